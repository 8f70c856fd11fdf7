// The gateway's review page: jobs with live progress, a job's documents by status and
// confidence, one document to accept or correct, and the reviewed documents as labels.
// It calls the /v1 API with the key the user gives, kept in this tab only (sessionStorage,
// never a cookie). Routes live in the URL's fragment: #/, #/jobs/ID, #/jobs/ID/documents/N.
"use strict";

(() => {
  const { h, renderDocument, renderDocumentList, statusFilter } = ForkpointReview;
  const KEY = "forkpoint.apiKey";
  const POLL_MS = 1000;
  const main = document.getElementById("main");
  const keyForm = document.getElementById("key-form");
  let timer = null;
  let shown = 0; // bumped on every route change: a poll of a page left behind stops itself
  const listState = { status: "", order: "confidence", indexes: [] };

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, options = {}) {
    const headers = { ...(options.headers || {}) };
    const key = sessionStorage.getItem(KEY);
    if (key) headers.Authorization = `Bearer ${key}`;
    if (options.json !== undefined) headers["Content-Type"] = "application/json";
    const answer = await fetch(`/v1${path}`, {
      method: options.method || "GET",
      headers,
      body: options.json === undefined ? undefined : JSON.stringify(options.json),
      credentials: "omit",
      cache: "no-store",
    });
    if (answer.status === 401) askForKey("The gateway refused the key.");
    if (!answer.ok) {
      let text = `${answer.status}`;
      try {
        const body = await answer.json();
        text = body.hint ? `${body.error} (${body.hint})` : body.error;
      } catch (_) {}
      throw new ApiError(answer.status, text);
    }
    if (options.raw) return answer;
    return answer.status === 204 ? null : answer.json();
  }

  function askForKey(reason) {
    stop();
    keyForm.hidden = false;
    main.hidden = true;
    document.getElementById("key-error").textContent = reason || "";
    document.getElementById("key").focus();
  }

  keyForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, document.getElementById("key").value.trim());
    document.getElementById("key").value = "";
    try {
      await api("/jobs");
    } catch (err) {
      if (err.status !== 401) document.getElementById("key-error").textContent = err.message;
      return;
    }
    keyForm.hidden = true;
    main.hidden = false;
    route();
  });
  document.getElementById("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    askForKey("");
  });

  function stop() {
    clearTimeout(timer);
    timer = null;
  }

  function poll(view, fn) {
    const tick = async () => {
      if (view !== shown) return;
      let again = true;
      try {
        again = await fn();
      } catch (err) {
        if (view === shown) showError(err);
      }
      if (again !== false && view === shown) timer = setTimeout(tick, POLL_MS);
    };
    tick();
  }

  function showError(err) {
    const box = document.getElementById("page-error");
    box.textContent = err ? err.message : "";
    box.hidden = !err;
  }

  function rates(job) {
    const t = job.elapsed_seconds || 0;
    return {
      docs: t ? job.done / t : 0,
      read: job.read_tokens_per_second,
      write: job.write_tokens_per_second,
    };
  }

  function progress(job) {
    const bar = h("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": String(job.total), "aria-valuenow": String(job.done) });
    const fill = h("div", { class: "fill" });
    fill.style.width = `${job.total ? (100 * job.done) / job.total : 0}%`;
    bar.append(fill);
    return h("div", { class: "progress" }, bar, h("span", { class: "count", text: `${job.done}/${job.total}` }));
  }

  // ---- jobs
  function showJobs(view) {
    const table = h("div", { id: "jobs" });
    main.replaceChildren(h("h1", { text: "Jobs" }), table);
    poll(view, async () => {
      const jobs = await api("/jobs");
      showError(null);
      if (!jobs.length) {
        table.replaceChildren(h("p", { class: "muted", text: "No jobs for this key." }));
        return true;
      }
      const rows = jobs.map((job) => {
        const r = rates(job);
        return h(
          "tr",
          { class: "job-row", dataset: { id: job.id, state: job.state }, onclick: () => (location.hash = `#/jobs/${job.id}`) },
          h("td", {}, h("a", { href: `#/jobs/${job.id}`, text: job.id.slice(0, 8) })),
          h("td", { text: job.task }),
          h("td", {}, h("span", { class: `state state-${job.state}`, text: job.state })),
          h("td", {}, progress(job)),
          h("td", { class: "num", text: r.docs.toFixed(2) }),
          h("td", { class: "num", text: r.read.toFixed(1) }),
          h("td", { class: "num", text: r.write.toFixed(1) }),
          h("td", { class: "num", text: `${Math.round(job.elapsed_seconds)} s` }),
        );
      });
      table.replaceChildren(
        h(
          "table",
          { class: "jobs" },
          h("thead", {}, h("tr", {}, ["job", "task", "state", "progress", "docs/s", "read tok/s", "write tok/s", "elapsed"].map((t) => h("th", { text: t })))),
          h("tbody", {}, rows),
        ),
      );
      return true;
    });
  }

  // ---- one job
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Tokens read and written so far against seconds since the job began, on one scale (reads
  // are usually many times the writes, and the chart shows it).
  function chart(points) {
    const [W, H, L, R, T, B] = [640, 200, 64, 16, 12, 28];
    const root = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "tokens over time" });
    const last = points[points.length - 1] || [0, 0, 0, 0];
    const maxT = last[0] > 0 ? last[0] : 1;
    const maxY = Math.max(last[2], last[3], 1);
    const x = (t) => L + ((W - L - R) * t) / maxT;
    const y = (v) => H - B - ((H - T - B) * v) / maxY;
    root.append(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, class: "plot" }));
    const line = (col, cls) =>
      svg("polyline", { class: cls, points: points.map((p) => `${x(p[0]).toFixed(1)},${y(p[col]).toFixed(1)}`).join(" ") });
    root.append(line(2, "read"), line(3, "write"));
    root.append(svg("text", { x: L - 6, y: T + 10, class: "axis", "text-anchor": "end" }, maxY.toLocaleString("en")));
    root.append(svg("text", { x: L - 6, y: H - B, class: "axis", "text-anchor": "end" }, "0"));
    root.append(svg("text", { x: L, y: H - 8, class: "axis" }, "0 s"));
    root.append(svg("text", { x: W - R, y: H - 8, class: "axis", "text-anchor": "end" }, `${last[0].toFixed(1)} s`));
    root.append(svg("text", { x: L + 8, y: T + 16, class: "legend read" }, `tokens read: ${last[2].toLocaleString("en")}`));
    root.append(svg("text", { x: L + 8, y: T + 32, class: "legend write" }, `tokens written: ${last[3].toLocaleString("en")}`));
    root.dataset.points = String(points.length);
    return root;
  }

  function showJob(view, id) {
    const head = h("div", { class: "job-head" });
    const chartBox = h("div", { class: "chart-box" });
    const filters = h("div", {});
    const order = h(
      "select",
      { id: "order", "aria-label": "order", onchange: () => { listState.order = order.value; refresh(); } },
      h("option", { value: "confidence", text: "lowest confidence first" }),
      h("option", { value: "index", text: "document order" }),
    );
    order.value = listState.order;
    const exportButton = h("button", { id: "export-labels", onclick: () => exportLabels(id) }, "Export labels (JSONL)");
    const exportNote = h("span", { class: "muted", id: "export-note" });
    const list = h("div", { id: "documents" });
    main.replaceChildren(
      h("p", {}, h("a", { href: "#/", text: "← jobs" })),
      head,
      chartBox,
      h("div", { class: "toolbar" }, filters, order, exportButton, exportNote),
      list,
    );
    let lastDone = -1;
    let finalSeen = false;
    const open = (index) => (location.hash = `#/jobs/${id}/documents/${index}`);
    async function refresh() {
      const query = new URLSearchParams({ order: listState.order, limit: "500" });
      if (listState.status) query.set("status", listState.status);
      const page = await api(`/jobs/${id}/documents?${query}`);
      listState.indexes = page.documents.map((d) => d.index);
      filters.replaceChildren(statusFilter(page.counts, listState.status, (s) => { listState.status = s; refresh(); }));
      renderDocumentList(list, page.documents, open);
    }
    poll(view, async () => {
      const [job, timeline] = await Promise.all([api(`/jobs/${id}`), api(`/jobs/${id}/timeline`)]);
      showError(null);
      const r = rates(job);
      head.replaceChildren(
        h("h1", {}, `Job ${id.slice(0, 8)} `, h("span", { class: `state state-${job.state}`, text: job.state })),
        h("p", { class: "muted", text: `task ${job.task} · ${Math.round(job.elapsed_seconds)} s` }),
        progress(job),
        h(
          "dl",
          { class: "rates" },
          h("dt", { text: "documents/s" }), h("dd", { id: "rate-docs", text: r.docs.toFixed(2) }),
          h("dt", { text: "read tokens/s" }), h("dd", { id: "rate-read", text: r.read.toFixed(1) }),
          h("dt", { text: "write tokens/s" }), h("dd", { id: "rate-write", text: r.write.toFixed(1) }),
        ),
      );
      chartBox.replaceChildren(chart(timeline.points));
      const final = job.state === "done" || job.state === "cancelled";
      if (job.done !== lastDone) {
        lastDone = job.done;
        await refresh();
      }
      if (final && finalSeen) return false;
      finalSeen = final;
      return true;
    });
  }

  async function exportLabels(id) {
    const note = document.getElementById("export-note");
    try {
      const answer = await api(`/jobs/${id}/labels`, { raw: true });
      const text = await answer.text();
      const lines = text.split("\n").filter((l) => l.trim()).length;
      const link = h("a", { id: "labels-link", download: `labels-${id.slice(0, 8)}.jsonl`, text: `labels-${id.slice(0, 8)}.jsonl` });
      link.href = URL.createObjectURL(new Blob([text], { type: "application/x-ndjson" }));
      note.replaceChildren(`${lines} labelled document${lines === 1 ? "" : "s"}: `, link);
      link.click();
    } catch (err) {
      note.textContent = err.message;
    }
  }

  // ---- one document
  async function showDocument(view, id, index, message) {
    const doc = await api(`/jobs/${id}/documents/${index}`);
    if (view !== shown) return;
    showError(null);
    const at = listState.indexes.indexOf(index);
    const step = (to) => to !== undefined && h("a", { href: `#/jobs/${id}/documents/${to}`, text: to < index ? "← previous" : "next →" });
    const nav = h("p", { class: "nav" }, h("a", { href: `#/jobs/${id}`, text: "← documents" }), " ",
      at > 0 ? step(listState.indexes[at - 1]) : null, " ",
      at >= 0 && at + 1 < listState.indexes.length ? step(listState.indexes[at + 1]) : null);
    const box = h("div", { id: "document" });
    main.replaceChildren(nav, box);
    const again = (text) => () => showDocument(view, id, index, { text });
    const review = (json) => api(`/jobs/${id}/documents/${index}/review`, { method: "PUT", json });
    renderDocument(box, doc, {
      editable: true,
      message,
      onAccept: () => review({ action: "accept" }).then(again("Accepted.")),
      onCorrect: (data) => review({ action: "correct", data }).then(again("Correction saved beside the answer.")),
      onUndo: () => api(`/jobs/${id}/documents/${index}/review`, { method: "DELETE" }).then(again("Review forgotten.")),
    });
  }

  function route() {
    stop();
    shown += 1;
    const view = shown;
    showError(null);
    const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
    if (parts[0] === "jobs" && parts[1] && parts[2] === "documents" && parts[3] !== undefined) {
      showDocument(view, parts[1], Number(parts[3])).catch(showError);
    } else if (parts[0] === "jobs" && parts[1]) {
      showJob(view, parts[1]);
    } else {
      showJobs(view);
    }
  }

  window.addEventListener("hashchange", () => {
    if (keyForm.hidden) route();
  });
  if (sessionStorage.getItem(KEY) === null) askForKey("");
  else {
    keyForm.hidden = true;
    route();
  }
})();
