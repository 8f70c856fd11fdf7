// The standalone report (`forkpoint review RESULTS FOLDER --html`): the documents embedded in
// the file, listed by status and confidence, each shown with the review page's document view.
"use strict";

(() => {
  const { h, renderDocument, renderDocumentList, statusFilter, summary, byConfidence } = ForkpointReview;
  const data = JSON.parse(document.getElementById("fp-data").textContent);
  const main = document.getElementById("main");
  const state = { status: "", order: "confidence" };
  const docs = data.documents;

  function showList() {
    const rows = docs.map(summary);
    const counts = {};
    for (const row of rows) counts[row.status] = (counts[row.status] || 0) + 1;
    let shown = rows.filter((row) => !state.status || row.status === state.status);
    if (state.order === "confidence") shown = [...shown].sort(byConfidence);
    const order = h(
      "select",
      { "aria-label": "order", onchange: () => { state.order = order.value; showList(); } },
      h("option", { value: "confidence", text: "lowest confidence first" }),
      h("option", { value: "index", text: "document order" }),
    );
    order.value = state.order;
    const list = h("div", { id: "documents" });
    main.replaceChildren(
      h("h1", { text: data.title }),
      h("div", { class: "toolbar" }, statusFilter(counts, state.status, (s) => { state.status = s; showList(); }), order),
      list,
    );
    renderDocumentList(list, shown, (index) => (location.hash = `#${index}`));
  }

  function route() {
    const index = Number(location.hash.slice(1));
    const doc = location.hash.length > 1 ? docs.find((d) => d.index === index) : undefined;
    if (!doc) {
      showList();
      return;
    }
    const box = h("div", { id: "document" });
    main.replaceChildren(h("p", {}, h("a", { href: "#", text: "← documents" })), box);
    renderDocument(box, doc, { editable: false });
  }

  window.addEventListener("hashchange", route);
  route();
})();
