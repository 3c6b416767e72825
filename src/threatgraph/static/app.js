// threatgraph query page: no external resources, works offline.
"use strict";
(function () {
  const sel = document.getElementById("named");
  const text = document.getElementById("query");
  const params = document.getElementById("params");
  const desc = document.getElementById("description");
  const status = document.getElementById("status");
  const out = document.getElementById("result");
  let library = {};

  function cell(term) {
    if (!term) return "";
    if (term.type === "uri") return term.value;
    if (term.type === "bnode") return "_:" + term.value;
    return term.value + (term["xml:lang"] ? "@" + term["xml:lang"] : "");
  }

  function showJson(data) {
    out.textContent = "";
    if (typeof data.boolean === "boolean") {
      out.textContent = String(data.boolean);
      status.textContent = "done";
      return;
    }
    const table = document.createElement("table");
    table.id = "results";
    const head = table.insertRow();
    for (const v of data.head.vars) {
      const th = document.createElement("th");
      th.textContent = v;
      head.appendChild(th);
    }
    for (const b of data.results.bindings) {
      const row = table.insertRow();
      for (const v of data.head.vars) row.insertCell().textContent = cell(b[v]);
    }
    out.appendChild(table);
    status.textContent = data.results.bindings.length + " rows";
    status.dataset.rows = String(data.results.bindings.length);
  }

  async function show(resp) {
    const ctype = resp.headers.get("Content-Type") || "";
    if (!resp.ok) {
      const pre = document.createElement("pre");
      pre.className = "error";
      pre.textContent = "HTTP " + resp.status + ": " + (await resp.text());
      out.textContent = "";
      out.appendChild(pre);
      status.textContent = "error";
      return;
    }
    if (ctype.startsWith("application/sparql-results+json")) {
      showJson(await resp.json());
    } else {
      const pre = document.createElement("pre");
      pre.textContent = await resp.text();
      out.textContent = "";
      out.appendChild(pre);
      status.textContent = "done";
    }
  }

  async function run() {
    status.textContent = "running…";
    const name = sel.value;
    const q = library[name];
    let resp;
    try {
      if (q && text.value === q.query) {
        const usp = new URLSearchParams();
        for (const input of params.querySelectorAll("input")) {
          if (input.value !== "") usp.set(input.name, input.value);
        }
        resp = await fetch("/queries/" + encodeURIComponent(name) + "?" + usp.toString(), {
          headers: { Accept: "application/sparql-results+json, text/turtle;q=0.5" } });
      } else {
        resp = await fetch("/query", {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded",
                     Accept: "application/sparql-results+json, text/turtle;q=0.5" },
          body: new URLSearchParams({ query: text.value }).toString() });
      }
      await show(resp);
    } catch (err) {
      status.textContent = "error: " + err;
    }
  }

  function choose() {
    params.textContent = "";
    const q = library[sel.value];
    desc.textContent = q ? q.title + ": " + q.description : "";
    if (!q) return;
    text.value = q.query;
    for (const p of q.params) {
      const label = document.createElement("label");
      label.textContent = p.name + " (" + p.type + ") ";
      const input = document.createElement("input");
      input.name = p.name;
      input.value = p.default === null ? "" : p.default;
      input.title = p.description;
      label.appendChild(input);
      params.appendChild(label);
    }
  }

  fetch("/queries").then((r) => r.json()).then((list) => {
    for (const q of list) {
      library[q.name] = q;
      const opt = document.createElement("option");
      opt.value = q.name;
      opt.textContent = q.name + " — " + q.title;
      sel.appendChild(opt);
    }
    document.body.dataset.loaded = String(list.length);
    // /#query=NAME&param=value… selects a named query, fills its parameters and runs it.
    const hash = new URLSearchParams(location.hash.slice(1));
    const name = hash.get("query");
    if (name && library[name]) {
      sel.value = name;
      choose();
      for (const input of params.querySelectorAll("input")) {
        if (hash.has(input.name)) input.value = hash.get(input.name);
      }
      run();
    }
  });
  sel.addEventListener("change", choose);
  document.getElementById("run").addEventListener("click", run);
})();
