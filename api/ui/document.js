// The document view, shared by the gateway's review page (/ui/) and the standalone report
// (`forkpoint review RESULTS FOLDER --html`): one document's text with each value's grounding
// span highlighted and tied to its field, unsure and ungrounded values marked, the raw answer
// and the reason for a failed one; and the list of a job's documents.
// Everything shown comes from documents and answers, so it is untrusted: text is only ever set
// as text (textContent, createTextNode), never parsed as HTML.
"use strict";

const ForkpointReview = (() => {
  const UNSURE_BELOW = 0.6; // as api/review.py UNSURE_BELOW
  const STATUSES = ["ok", "needs_review", "invalid", "truncated", "error"];
  const WITH_DATA = ["ok", "needs_review"];

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // Every leaf value of an answer with its path, written as grounding writes paths:
  // "vendor", "address.city", "line_items[2].description".
  function leaves(data, path = "", out = []) {
    if (Array.isArray(data) && data.length) {
      data.forEach((item, i) => leaves(item, `${path}[${i}]`, out));
    } else if (data && typeof data === "object" && Object.keys(data).length) {
      for (const [key, value] of Object.entries(data)) {
        leaves(value, path ? `${path}.${key}` : key, out);
      }
    } else {
      out.push({ path, value: data });
    }
    return out;
  }

  function parsePath(path) {
    const keys = [];
    for (const part of path.match(/[^.[\]]+|\[\d+\]/g) || []) {
      keys.push(part.startsWith("[") ? Number(part.slice(1, -1)) : part);
    }
    return keys;
  }

  function withValue(data, path, value) {
    if (path === "") return value;
    const copy = JSON.parse(JSON.stringify(data));
    const keys = parsePath(path);
    let node = copy;
    for (const key of keys.slice(0, -1)) node = node[key];
    node[keys[keys.length - 1]] = value;
    return copy;
  }

  function shown(value) {
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  // What a reviewer typed, as the value's type: a string field stays a string (empty: null if
  // it was null), anything else is read as JSON when it parses.
  function typed(text, before) {
    if (typeof before === "string") return text;
    if (before === null && text === "") return null;
    try {
      return JSON.parse(text);
    } catch (_) {
      return text;
    }
  }

  function percent(p) {
    return p === null || p === undefined ? "—" : `${Math.round(p * 100)}%`;
  }

  function badge(status) {
    return h("span", { class: `badge status-${status}`, text: status.replace("_", " ") });
  }

  // The document's text, cut at every span boundary; each cut covered by spans is a <mark>
  // naming its fields (several values can share a span, and spans can overlap).
  function highlighted(text, spans) {
    const cuts = new Set([0, text.length]);
    for (const s of spans) {
      s.start = Math.max(0, Math.min(text.length, s.start));
      s.end = Math.max(s.start, Math.min(text.length, s.end));
      cuts.add(s.start);
      cuts.add(s.end);
    }
    const points = [...cuts].sort((a, b) => a - b);
    const pre = h("pre", { class: "doc-text" });
    const marks = [];
    for (let i = 0; i + 1 < points.length; i++) {
      const [a, b] = [points[i], points[i + 1]];
      const over = spans.filter((s) => s.start <= a && s.end >= b && s.end > s.start);
      const piece = text.slice(a, b);
      if (!over.length) {
        pre.append(document.createTextNode(piece));
        continue;
      }
      const fields = [...new Set(over.map((s) => s.field))];
      const unsure = over.some((s) => s.unsure);
      const mark = h("mark", {
        class: unsure ? "span unsure" : "span",
        dataset: { fields: fields.join(" ") },
        title: over.map((s) => s.path).join(", "),
        text: piece,
      });
      pre.append(mark);
      marks.push(mark);
    }
    return { pre, marks };
  }

  // doc: {index, name, text, task, result, review}. options.editable with onCorrect(data),
  // onAccept(), onUndo() (each a Promise), and options.message to show after a save.
  function renderDocument(container, doc, options = {}) {
    container.replaceChildren();
    const result = doc.result || null;
    const status = result ? result.status : "pending";
    const data = result && WITH_DATA.includes(result.status) ? result.data : undefined;
    const confidence = (result && result.confidence) || {};
    const grounding = (result && result.grounding) || [];
    const groundOf = new Map(grounding.map((g) => [g.path, g]));
    const fields = data === undefined ? [] : leaves(data);
    const fieldOf = new Map(fields.map((f, i) => [f.path, i]));
    const spans = [];
    for (const g of grounding) {
      if (!g.span || !fieldOf.has(g.path)) continue;
      const p = confidence[g.path];
      spans.push({
        start: g.span[0],
        end: g.span[1],
        field: fieldOf.get(g.path),
        path: g.path,
        unsure: p !== undefined && p < UNSURE_BELOW,
      });
    }
    const { pre, marks } = highlighted(doc.text || "", spans);

    const header = h(
      "div",
      { class: "doc-header" },
      h("h2", { text: doc.name }),
      badge(status),
      doc.review ? h("span", { class: `badge review-${doc.review.action}`, text: doc.review.action }) : null,
      doc.task ? h("span", { class: "muted", text: `task ${doc.task}` }) : null,
    );
    const reasons = [];
    if (result && result.review) {
      reasons.push(h("p", { class: "reason" }, "Needs review: ", result.review.join("; ")));
    }
    if (result && result.error) {
      reasons.push(h("p", { class: "reason" }, `Why ${status}: `, result.error));
    }

    const rows = fields.map((field, i) => {
      const p = confidence[field.path];
      const g = groundOf.get(field.path);
      const unsure = p !== undefined && p < UNSURE_BELOW;
      const ungrounded = typeof field.value === "string" && g !== undefined && !g.match;
      const input = options.editable
        ? h("input", { class: "value-input", value: shown(field.value), "aria-label": field.path })
        : null;
      const row = h(
        "tr",
        {
          class: ["field", unsure ? "unsure" : "", ungrounded ? "ungrounded" : ""].join(" ").trim(),
          dataset: { field: String(i), path: field.path },
        },
        h("td", { class: "path", text: field.path || "(answer)" }),
        h("td", { class: "value" }, input || h("span", { text: shown(field.value) })),
        h("td", { class: unsure ? "confidence low" : "confidence", text: percent(p) }),
        h(
          "td",
          { class: "flags" },
          unsure ? h("span", { class: "flag unsure", text: "unsure" }) : null,
          ungrounded ? h("span", { class: "flag ungrounded", text: "not in the document" }) : null,
          g && g.match === "normalized" ? h("span", { class: "flag", text: "normalized" }) : null,
        ),
      );
      row.input = input;
      row.field = field;
      return row;
    });

    // hover or click a field: its spans light up; hover or click a span: its fields do
    const rowsOf = (mark) => mark.dataset.fields.split(" ").map((i) => rows[Number(i)]);
    const marksOf = (i) => marks.filter((m) => m.dataset.fields.split(" ").includes(String(i)));
    const light = (nodes, on) => nodes.forEach((n) => n.classList.toggle("lit", on));
    const pin = (nodes) => {
      for (const n of container.querySelectorAll(".pinned")) n.classList.remove("pinned");
      nodes.forEach((n) => n.classList.add("pinned"));
      if (nodes.length) nodes[0].scrollIntoView({ block: "nearest" });
    };
    rows.forEach((row, i) => {
      row.addEventListener("mouseenter", () => light(marksOf(i), true));
      row.addEventListener("mouseleave", () => light(marksOf(i), false));
      row.addEventListener("click", () => pin(marksOf(i)));
    });
    for (const mark of marks) {
      mark.addEventListener("mouseenter", () => light(rowsOf(mark), true));
      mark.addEventListener("mouseleave", () => light(rowsOf(mark), false));
      mark.addEventListener("click", () => pin(rowsOf(mark)));
    }

    const table = h(
      "table",
      { class: "fields" },
      h("thead", {}, h("tr", {}, ["field", "value", "confidence", ""].map((t) => h("th", { text: t })))),
      h("tbody", {}, rows),
    );
    const message = h("p", { class: "message", role: "status" });
    if (options.message) {
      message.textContent = options.message.text;
      message.classList.add(options.message.error ? "error" : "ok");
    }
    const say = (text, error) => {
      message.textContent = text;
      message.className = `message ${error ? "error" : "ok"}`;
    };
    const run = (promise) => promise.catch((err) => say(err.message, true));

    const side = [reasons];
    if (data !== undefined) side.push(table);
    else side.push(h("p", { class: "muted", text: "No validated answer." }));
    if (result && result.raw) {
      side.push(h("details", { class: "raw", open: true }, h("summary", { text: "Raw answer" }), h("pre", { text: result.raw })));
    }
    if (data !== undefined) {
      side.push(h("details", { class: "raw" }, h("summary", { text: "Answer (JSON)" }), h("pre", { text: JSON.stringify(data, null, 2) })));
    }
    if (doc.review && doc.review.action === "corrected") {
      side.push(h("details", { class: "raw", open: true }, h("summary", { text: "Correction (JSON)" }), h("pre", { class: "correction", text: JSON.stringify(doc.review.data, null, 2) })));
    }

    if (options.editable && result) {
      const corrected = () => rows.reduce((acc, row) => {
        const value = typed(row.input.value, row.field.value);
        return JSON.stringify(value) === JSON.stringify(row.field.value) ? acc : withValue(acc, row.field.path, value);
      }, data);
      const start = doc.review && doc.review.action === "corrected" ? doc.review.data : data !== undefined ? data : parsedRaw(result.raw);
      const json = h("textarea", { class: "json-input", rows: 8, "aria-label": "answer as JSON", text: JSON.stringify(start ?? {}, null, 2) });
      const actions = h(
        "div",
        { class: "actions" },
        data !== undefined ? h("button", { class: "accept", onclick: () => run(options.onAccept()) }, "Accept answer") : null,
        data !== undefined ? h("button", { class: "save", onclick: () => run(options.onCorrect(corrected())) }, "Save correction") : null,
        doc.review ? h("button", { class: "undo", onclick: () => run(options.onUndo()) }, "Forget review") : null,
      );
      const jsonEditor = h(
        "details",
        { class: "json-editor", open: data === undefined },
        h("summary", { text: "Correct as JSON" }),
        json,
        h("button", {
          class: "save-json",
          onclick: () => {
            let value;
            try {
              value = JSON.parse(json.value);
            } catch (err) {
              say(`not JSON: ${err.message}`, true);
              return;
            }
            run(options.onCorrect(value));
          },
        }, "Save JSON correction"),
      );
      side.push(actions, jsonEditor);
    }
    side.push(message);

    container.append(
      header,
      h("div", { class: "doc-body" }, h("section", { class: "doc-pane" }, pre), h("section", { class: "field-pane" }, side)),
    );
  }

  function parsedRaw(raw) {
    try {
      const value = JSON.parse(raw || "");
      return value && typeof value === "object" ? value : {};
    } catch (_) {
      return {};
    }
  }

  // Buttons for "all" and each status, with counts; the current one pressed.
  function statusFilter(counts, current, onChange) {
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const button = (value, label, n) =>
      h("button", { class: "filter", "aria-pressed": String(current === value), dataset: { status: value }, onclick: () => onChange(value) }, `${label} (${n})`);
    return h(
      "div",
      { class: "filters" },
      button("", "all", total),
      STATUSES.map((s) => button(s, s.replace("_", " "), counts[s] || 0)),
    );
  }

  // rows: [{index, name, status, confidence, unsure, review}]; onOpen(index).
  function renderDocumentList(container, rows, onOpen) {
    container.replaceChildren();
    if (!rows.length) {
      container.append(h("p", { class: "muted", text: "No documents here yet." }));
      return;
    }
    const body = rows.map((row) =>
      h(
        "tr",
        { class: "doc-row", dataset: { index: String(row.index), status: row.status }, onclick: () => onOpen(row.index) },
        h("td", { text: String(row.index) }),
        h("td", {}, h("a", { href: "#", onclick: (e) => e.preventDefault(), text: row.name })),
        h("td", {}, badge(row.status)),
        h("td", { class: row.confidence !== null && row.confidence < UNSURE_BELOW ? "confidence low" : "confidence", text: percent(row.confidence) }),
        h("td", { text: row.unsure && row.unsure.length ? row.unsure.join(", ") : "" }),
        h("td", {}, row.review ? h("span", { class: `badge review-${row.review}`, text: row.review }) : ""),
      ),
    );
    container.append(
      h(
        "table",
        { class: "documents" },
        h("thead", {}, h("tr", {}, ["#", "document", "status", "lowest confidence", "unsure fields", "review"].map((t) => h("th", { text: t })))),
        h("tbody", {}, body),
      ),
    );
  }

  // A summary row of one document, as GET /v1/jobs/{id}/documents gives it (for the report).
  function summary(doc) {
    const result = doc.result || {};
    const confidence = result.confidence || {};
    const values = Object.values(confidence);
    const unsure = Object.entries(confidence).filter(([, p]) => p < UNSURE_BELOW).sort((a, b) => a[1] - b[1]);
    return {
      index: doc.index,
      name: doc.name,
      status: result.status || "error",
      confidence: values.length ? Math.min(...values) : null,
      unsure: unsure.map(([path]) => path),
      review: doc.review ? doc.review.action : null,
    };
  }

  // Lowest confidence first; documents without confidence last, in document order.
  function byConfidence(a, b) {
    const [ca, cb] = [a.confidence, b.confidence];
    if ((ca === null) !== (cb === null)) return ca === null ? 1 : -1;
    return (ca ?? 0) - (cb ?? 0) || a.index - b.index;
  }

  return { h, leaves, renderDocument, renderDocumentList, statusFilter, summary, byConfidence, percent, badge, STATUSES };
})();
