// gemlib trajectory viewer: everything it shows is in the page; it fetches nothing.
// Model-written text is only ever set as textContent, never parsed as HTML.
"use strict";
(function () {
  const started = performance.now();
  const DATA = JSON.parse(document.getElementById("gemlib-data").textContent);
  const INDEX = DATA.index; // one small entry per item, for the list and the filters
  let RAW = null; // each item's full record as a JSON string, parsed when opened; null until unpacked
  const PAGE = DATA.page_size;
  let lowered = null; // RAW in lower case, made on the first search

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function json(value) {
    return JSON.stringify(value, null, 2);
  }
  function asList(value) {
    if (value === undefined || value === null) return [];
    return Array.isArray(value) ? value.map(String) : [String(value)];
  }

  // ------------------------------------------------------------------ state in the URL hash
  const FIELDS = ["q", "kind", "stage", "rule", "domain", "task", "tools", "page", "open"];
  function readState() {
    const params = new URLSearchParams(location.hash.slice(1));
    const state = {};
    for (const f of FIELDS) state[f] = params.get(f) || "";
    state.page = parseInt(state.page || "0", 10) || 0;
    return state;
  }
  function writeState(state) {
    const params = new URLSearchParams();
    for (const f of FIELDS) if (state[f]) params.set(f, String(state[f]));
    history.replaceState(null, "", "#" + params.toString());
  }
  let state = readState();

  // ------------------------------------------------------------------ filters
  const controls = {};
  function options(select, values, label) {
    select.replaceChildren(el("option", null, label));
    select.firstChild.value = "";
    for (const v of values) {
      const o = el("option", null, v);
      o.value = v;
      select.appendChild(o);
    }
  }
  function distinct(key) {
    const seen = new Set();
    for (const e of INDEX) for (const v of asList(e[key])) if (v) seen.add(v);
    return Array.from(seen).sort();
  }
  function toolBucket(n) {
    return n <= 2 ? "0-2" : n <= 5 ? "3-5" : n <= 10 ? "6-10" : "11+";
  }
  function buildFilters() {
    const bar = document.getElementById("filters");
    const specs = [
      ["kind", ["kept", "rejected"], "kept and rejected"],
      ["stage", DATA.stage_order.filter((s) => INDEX.some((e) => e.stage === s)), "any stage"],
      ["rule", distinct("rule"), "any rule"],
      ["domain", distinct("domain"), "any domain"],
      ["task", distinct("task"), "any task"],
      ["tools", ["0-2", "3-5", "6-10", "11+"], "any tool count"],
    ];
    for (const [name, values, label] of specs) {
      const select = el("select");
      select.id = "filter-" + name;
      select.title = label;
      options(select, values, label);
      select.value = state[name];
      select.addEventListener("change", () => {
        state[name] = select.value;
        state.page = 0;
        refresh();
      });
      controls[name] = select;
      bar.appendChild(select);
    }
    const search = el("input");
    search.id = "search";
    search.type = "search";
    search.placeholder = "search text, ids, tool names";
    search.value = state.q;
    let timer = null;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        state.q = search.value;
        state.page = 0;
        refresh();
      }, 150);
    });
    controls.q = search;
    bar.appendChild(search);
  }

  function matches(i) {
    const e = INDEX[i];
    if (state.kind && e.kind !== state.kind) return false;
    if (state.stage && e.stage !== state.stage) return false;
    if (state.rule && !asList(e.rule).includes(state.rule)) return false;
    if (state.domain && !asList(e.domain).includes(state.domain)) return false;
    if (state.task && !asList(e.task).includes(state.task)) return false;
    if (state.tools && (e.kind !== "kept" || toolBucket(e.tools) !== state.tools)) return false;
    if (state.q) {
      if (RAW === null) return false; // the search runs again once the records are unpacked
      if (lowered === null) lowered = RAW.map((r) => r.toLowerCase());
      if (!lowered[i].includes(state.q.toLowerCase())) return false;
    }
    return true;
  }

  // ------------------------------------------------------------------ the list, one page at a time
  function refresh() {
    writeState(state);
    const hits = [];
    for (let i = 0; i < INDEX.length; i++) if (matches(i)) hits.push(i);
    const pages = Math.max(1, Math.ceil(hits.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    const list = document.getElementById("list");
    list.replaceChildren();
    for (const i of hits.slice(state.page * PAGE, (state.page + 1) * PAGE)) {
      const e = INDEX[i];
      const row = el("li", "item " + e.kind);
      row.dataset.index = String(i);
      row.appendChild(el("span", "badge " + e.kind, e.kind === "kept" ? "kept" : e.stage));
      row.appendChild(el("span", "item-id", e.id));
      const line =
        e.kind === "kept" && e.messages === null
          ? e.preview
          : e.kind === "kept"
          ? `${e.messages} messages, ${e.calls} calls, ${e.tools} tools` +
            (e.flagged ? `, ${e.flagged} flagged` : "") +
            (e.masked ? `, ${e.masked} masked` : "")
          : `${e.rule}: ${e.reason}`;
      row.appendChild(el("div", "item-line", line));
      if (String(i) === state.open) row.classList.add("selected");
      row.addEventListener("click", () => open(i));
      list.appendChild(row);
    }
    document.getElementById("count").textContent =
      `${hits.length} of ${INDEX.length} items` +
      (hits.length > PAGE ? `, page ${state.page + 1} of ${pages}` : "");
    document.getElementById("prev").disabled = state.page === 0;
    document.getElementById("next").disabled = state.page >= pages - 1;
    if (state.q && RAW === null) document.getElementById("count").textContent = "searching...";
    if (state.open !== "" && INDEX[Number(state.open)] && RAW !== null) show(Number(state.open));
  }

  function open(i) {
    state.open = String(i);
    writeState(state);
    for (const row of document.querySelectorAll("#list li.selected")) row.classList.remove("selected");
    const row = document.querySelector(`#list li[data-index="${i}"]`);
    if (row) row.classList.add("selected");
    show(i);
  }

  // ------------------------------------------------------------------ one item
  function section(title) {
    const box = el("section", "block");
    box.appendChild(el("h3", null, title));
    return box;
  }
  function keyValues(pairs) {
    const table = el("table", "kv");
    for (const [k, v] of pairs) {
      if (v === undefined || v === null || v === "") continue;
      const tr = el("tr");
      tr.appendChild(el("th", null, k));
      tr.appendChild(el("td", null, typeof v === "string" ? v : json(v)));
      table.appendChild(tr);
    }
    return table;
  }

  function problemsByMessage(record, extra) {
    const found = {};
    const lists = [extra, record.labels && record.labels.problems];
    for (const list of lists) {
      if (!Array.isArray(list)) continue;
      for (const p of list) {
        if (!p || typeof p !== "object") continue;
        const at = p.message_index === undefined || p.message_index === null ? "none" : p.message_index;
        (found[at] = found[at] || []).push(p);
      }
    }
    return found;
  }

  function renderMessage(m, index, problems) {
    const box = el("div", "msg " + (m.role || "unknown"));
    box.id = "msg-" + index;
    const head = el("div", "msg-head", `${index} · ${m.role || "?"}` + (m.name ? ` · ${m.name}` : ""));
    box.appendChild(head);
    if (m.train === false) {
      box.classList.add("masked");
      head.appendChild(el("span", "tag masked-tag", "masked: not trained on"));
    }
    const own = problems[index] || [];
    for (const list of [m.problems, m.verdicts]) if (Array.isArray(list)) own.push(...list);
    if (own.length) {
      box.classList.add("flagged");
      for (const p of own) box.appendChild(el("div", "problem", `${p.rule || "problem"}: ${p.text || p.reason || json(p)}`));
    }
    if (m.reasoning) {
      const details = el("details", "reasoning");
      details.appendChild(el("summary", null, "reasoning"));
      details.appendChild(el("pre", null, m.reasoning));
      box.appendChild(details);
    }
    if (m.content) box.appendChild(el("pre", "content", m.content));
    for (const call of m.tool_calls || []) {
      const c = el("div", "call");
      c.appendChild(el("span", "call-name", call.name));
      if (call.id) c.appendChild(el("span", "call-id", call.id));
      c.appendChild(el("pre", "call-args", json(call.arguments || {})));
      box.appendChild(c);
    }
    if (m.tool_call_id) box.appendChild(el("div", "call-id", "answers " + m.tool_call_id));
    return box;
  }

  function renderTools(tools) {
    const box = section(`Tools (${tools.length})`);
    for (const t of tools) {
      const d = el("details", "tool");
      const s = el("summary");
      s.appendChild(el("b", null, t.name));
      s.appendChild(el("span", "tool-desc", " " + (t.description || "")));
      d.appendChild(s);
      d.appendChild(el("pre", null, json(t.parameters || {})));
      if (t.output_schema) d.appendChild(el("pre", null, "returns " + json(t.output_schema)));
      box.appendChild(d);
    }
    return box;
  }

  function renderProvenance(record) {
    const box = section("Provenance");
    const p = record.provenance || {};
    box.appendChild(
      keyValues([
        ["document", p.document_id],
        ["segment", p.segment_index],
        ["workflow", p.workflow_index],
        ["labels", record.labels && Object.keys(record.labels).length ? record.labels : null],
      ])
    );
    const stages = p.stages || [];
    if (stages.length) {
      const table = el("table", "stages");
      const head = el("tr");
      for (const h of ["stage", "version", "model", "prompt hash", "usage"]) head.appendChild(el("th", null, h));
      table.appendChild(head);
      for (const s of stages) {
        const tr = el("tr");
        for (const v of [s.stage, s.version, s.model, s.prompt_hash]) tr.appendChild(el("td", null, v || ""));
        const usage = s.usage || {};
        tr.appendChild(el("td", null, Object.keys(usage).map((k) => `${k} ${usage[k]}`).join(", ")));
        table.appendChild(tr);
        if (s.reasoning) {
          const r = el("tr");
          const td = el("td");
          td.colSpan = 5;
          const details = el("details", "reasoning");
          details.appendChild(el("summary", null, `${s.stage}: reasoning`));
          details.appendChild(el("pre", null, s.reasoning));
          td.appendChild(details);
          r.appendChild(td);
          table.appendChild(r);
        }
      }
      box.appendChild(table);
    }
    return box;
  }

  function showText(record, pane) {
    pane.appendChild(el("h2", null, record.id || "(no id)"));
    const box = section("Text");
    box.appendChild(
      keyValues([
        ["document", record.parent_id || null],
        ["segment", record.segment_index],
        ["meta", record.meta && Object.keys(record.meta).length ? record.meta : null],
      ])
    );
    box.appendChild(el("pre", "source-text", typeof record.text === "string" ? record.text : json(record)));
    pane.appendChild(box);
    if (record.provenance) pane.appendChild(renderProvenance(record));
  }

  function showKept(record, pane) {
    if (!Array.isArray(record.messages)) return showText(record, pane);
    pane.appendChild(el("h2", null, record.id || "(no id)"));
    const problems = problemsByMessage(record, null);
    const sides = el("div", "sides");
    const talk = section(`Conversation (${(record.messages || []).length} messages)`);
    talk.classList.add("conversation");
    (record.messages || []).forEach((m, i) => talk.appendChild(renderMessage(m, i, problems)));
    for (const p of problems.none || []) talk.appendChild(el("div", "problem", `${p.rule}: ${p.text}`));
    sides.appendChild(talk);
    const doc = record.document;
    if (doc && doc.text) {
      const source = section("Source segment");
      source.classList.add("source");
      source.appendChild(keyValues([["document", doc.parent_id || doc.id], ["segment", doc.segment_index]]));
      source.appendChild(el("pre", "source-text", doc.text));
      sides.appendChild(source);
    }
    pane.appendChild(sides);
    if (record.tools) pane.appendChild(renderTools(record.tools));
    pane.appendChild(renderProvenance(record));
  }

  function showRejected(record, pane) {
    pane.appendChild(el("h2", null, record.item_id || "(no id)"));
    const box = section(`Rejected by ${record.stage} / ${record.rule}`);
    box.appendChild(el("p", "reason", record.reason));
    box.appendChild(keyValues([["item", record.item_id], ["document", record.document_id]]));
    const detail = Object.assign({}, record.detail || {});
    const problems = Array.isArray(detail.problems) ? detail.problems : [];
    delete detail.problems;
    const item = detail.item;
    delete detail.item;
    for (const p of problems) {
      const where = p.message_index === undefined || p.message_index === null ? "" : ` (message ${p.message_index})`;
      box.appendChild(el("div", "problem", `${p.rule}${where}: ${p.text}`));
    }
    if (Object.keys(detail).length) box.appendChild(keyValues([["detail", detail]]));
    pane.appendChild(box);
    if (item && typeof item === "object" && item.messages) {
      const talk = section("The rejected trajectory");
      const byMessage = problemsByMessage({}, problems);
      item.messages.forEach((m, i) => talk.appendChild(renderMessage(m, i, byMessage)));
      pane.appendChild(talk);
    } else if (item && typeof item === "object" && item.text) {
      const source = section("The rejected text");
      source.appendChild(el("pre", "source-text", item.text));
      pane.appendChild(source);
    }
    if (record.raw) {
      const raw = section("The model's reply");
      raw.appendChild(el("pre", "raw", record.raw));
      pane.appendChild(raw);
    }
    const siblings = INDEX.map((e, i) => [e, i]).filter(
      ([e]) => e.kind === "kept" && e.document === record.document_id && record.document_id
    );
    if (siblings.length) {
      const box2 = section("Kept from the same document");
      for (const [e, i] of siblings) {
        const a = el("button", "link", e.id);
        a.addEventListener("click", () => open(i));
        box2.appendChild(a);
      }
      pane.appendChild(box2);
    }
  }

  function show(i) {
    const pane = document.getElementById("detail");
    pane.replaceChildren();
    if (RAW === null) {
      pane.appendChild(el("p", null, "unpacking the records..."));
      return;
    }
    const record = JSON.parse(RAW[i]);
    if (INDEX[i].kind === "kept") showKept(record, pane);
    else showRejected(record, pane);
    pane.scrollTop = 0;
  }

  // ------------------------------------------------------------------ the funnel at the top
  function buildFunnel() {
    const table = document.getElementById("funnel");
    if (!DATA.funnel.length) {
      table.remove();
      return;
    }
    const head = el("tr");
    for (const h of ["stage", "in", "out", "rejected", "drop reasons"]) head.appendChild(el("th", null, h));
    table.appendChild(head);
    for (const row of DATA.funnel) {
      const tr = el("tr");
      tr.appendChild(el("td", null, row.stage));
      for (const k of ["received", "emitted", "rejected"]) tr.appendChild(el("td", "num", row[k]));
      const reasons = el("td", "reasons");
      for (const [rule, n] of row.rules) {
        const b = el("button", "link", `${rule} ${n}`);
        b.addEventListener("click", () => {
          Object.assign(state, { kind: "rejected", stage: row.stage, rule: rule, page: 0 });
          for (const f of ["kind", "stage", "rule"]) controls[f].value = state[f];
          refresh();
        });
        reasons.appendChild(b);
      }
      tr.appendChild(reasons);
      table.appendChild(tr);
    }
  }

  document.getElementById("prev").addEventListener("click", () => {
    state.page = Math.max(0, state.page - 1);
    refresh();
  });
  document.getElementById("next").addEventListener("click", () => {
    state.page += 1;
    refresh();
  });
  buildFunnel();
  buildFilters();
  // The records are embedded gzip-compressed and base64-encoded; unpacking them needs no
  // network (a Blob through the browser's DecompressionStream).
  async function unpack() {
    const packed = atob(document.getElementById("gemlib-records").textContent.trim());
    const bytes = new Uint8Array(packed.length);
    for (let i = 0; i < packed.length; i++) bytes[i] = packed.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }

  refresh();
  unpack().then(
    (records) => {
      RAW = records;
      refresh();
      document.body.dataset.ready = (performance.now() - started).toFixed(0);
    },
    (error) => {
      document.getElementById("detail").replaceChildren(
        el("p", "problem", "could not unpack the records: " + error)
      );
    }
  );
})();
