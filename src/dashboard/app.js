"use strict";
(() => {
  const params = new URLSearchParams(location.search);
  const REFRESH = Math.min(2000, Math.max(250, Number(params.get("refresh")) || 1000));
  const HISTORY = 90;            // sparkline points kept (~1.5 min at 1 s)
  const TOKEN_KEY = "sentinel-proxy.admin-token";
  const $ = (id) => document.getElementById(id);
  const app = $("app");

  // ---- tiny DOM builder: text always goes through textContent, never innerHTML ----
  function h(tag, attrs, ...kids) {
    const isSvg = ["svg", "path", "line", "polyline", "rect", "circle"].includes(tag);
    const el = isSvg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.setAttribute("class", v);
      else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const fmtInt = (n) => (n === null || n === undefined) ? "—" : Number(n).toLocaleString("en-US");
  const fmtMs = (ms) => !ms ? "—" : ms < 10 ? ms.toFixed(1) : ms < 1000 ? Math.round(ms) + "" : (ms / 1000).toFixed(2) + " s";
  const fmtRate = (r) => r >= 100 ? Math.round(r) + "" : r >= 10 ? r.toFixed(1) : r.toFixed(2);
  const fmtPct = (p) => p === 0 ? "0%" : p < 0.1 ? "<0.1%" : p < 10 ? p.toFixed(1) + "%" : Math.round(p) + "%";
  function fmtAgo(s) {
    if (s < 60) return Math.max(0, Math.round(s)) + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return (s / 3600).toFixed(1) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }
  function fmtUptime(s) {
    const d = Math.floor(s / 86400), hh = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return d ? `${d}d ${hh}h` : hh ? `${hh}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
  }
  const scoreColor = (s) => s >= 100 ? "var(--ok2)" : s >= 95 ? "var(--good)" : s >= 80 ? "var(--warn)" : s >= 50 ? "var(--orange)" : "var(--bad)";

  // ---- sparklines (inline SVG, scaled to their own max) ----
  function spark(values, color, cls, w = 200, hgt = 38) {
    const svg = h("svg", { class: cls, viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: "none", "aria-hidden": "true" });
    if (values.length < 2 || !values.some((v) => v > 0)) {     // nothing yet, or all zero: a baseline
      svg.append(h("line", { x1: 0, y1: hgt - 1, x2: w, y2: hgt - 1, stroke: "var(--line)", "stroke-width": 1.5, "stroke-dasharray": "3 3" }));
      return svg;
    }
    // Stretched over the points we have (the window grows to HISTORY samples, then slides).
    const max = Math.max(...values, 1e-9), step = w / (values.length - 1);
    const pts = values.map((v, i) => [i * step, hgt - 2 - (v / max) * (hgt - 5)]);
    const line = pts.map((p, i) => (i ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1)).join("");
    svg.append(h("path", { d: `${line}L${w} ${hgt}L${pts[0][0].toFixed(1)} ${hgt}Z`, fill: color, "fill-opacity": 0.16, stroke: "none" }));
    svg.append(h("path", { d: line, fill: "none", stroke: color, "stroke-width": 1.6, "vector-effect": "non-scaling-stroke", "stroke-linejoin": "round" }));
    return svg;
  }

  // ---- client-side rates from successive /health totals ----
  const hist = { last: null, req: [], err: [], deltas: [], nodes: new Map() };
  const SMOOTH = 5;              // headline figures average the last few intervals
  function pushCapped(a, v) { a.push(v); if (a.length > HISTORY) a.shift(); }
  function track(doc, now) {
    const t = doc.totals || {};
    const last = hist.last;
    if (last && (t.requests < last.requests || doc.uptime_s < last.uptime)) {
      hist.req = []; hist.err = []; hist.deltas = []; hist.nodes.clear();     // the gateway restarted
    } else if (last) {
      const dt = Math.max(0.05, (now - last.t) / 1000);
      const dr = t.requests - last.requests, de = t.errors - last.errors;
      pushCapped(hist.req, dr / dt);
      pushCapped(hist.err, dr > 0 ? 100 * de / dr : 0);
      pushCapped(hist.deltas, [dt, dr, de]);
      for (const b of doc.backends || []) {
        const prev = last.nodes.get(b.name);
        if (prev === undefined) continue;
        if (!hist.nodes.has(b.name)) hist.nodes.set(b.name, []);
        pushCapped(hist.nodes.get(b.name), Math.max(0, b.requests - prev) / dt);
      }
    }
    hist.last = { t: now, requests: t.requests || 0, errors: t.errors || 0, uptime: doc.uptime_s || 0,
      nodes: new Map((doc.backends || []).map((b) => [b.name, b.requests])) };
  }

  // ---- rendering ----
  function renderHeader(doc) {
    const bs = doc.backends || [];
    const routable = bs.filter((b) => b.routable).length;
    const st = $("status");
    st.className = "pill s-" + doc.status;
    st.textContent = doc.status;
    $("meta").replaceChildren(
      h("span", null, h("b", null, `${routable}/${bs.length}`), " routable"),
      h("span", null, "best tip ", h("b", { class: "num" }, fmtInt(doc.best_tip))),
      h("span", null, "up ", h("b", null, fmtUptime(doc.uptime_s || 0))));
    document.title = `${doc.status} (${routable}/${bs.length}) · sentinel-proxy`;
    const color = { healthy: "#3fb950", degraded: "#d29922", unhealthy: "#f85149" }[doc.status] || "#8d96a0";
    $("favicon").href = "data:image/svg+xml," + encodeURIComponent(
      `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="7" fill="${color}"/></svg>`);
  }

  function renderKpis(doc) {
    const t = doc.totals || {};
    const recent = hist.deltas.slice(-SMOOTH);
    const sum = (k) => recent.reduce((a, d) => a + d[k], 0);
    const rate = recent.length ? sum(1) / sum(0) : null;
    const errPct = recent.length ? (sum(1) ? 100 * sum(2) / sum(1) : 0) : null;
    const span = Math.round(hist.deltas.slice(-HISTORY).reduce((a, d) => a + d[0], 0));
    const errClass = errPct === null ? "" : errPct >= 5 ? "t-bad" : errPct >= 1 ? "t-warn" : "";
    $("kpis").replaceChildren(
      h("div", { class: "kpi", "data-kpi": "rate" },
        h("div", { class: "label" }, "Request rate"),
        h("div", { class: "value" }, rate === null ? "—" : fmtRate(rate), h("small", null, "req/s")),
        h("div", { class: "sub" }, fmtInt(t.requests), " items served", span ? ` · last ${fmtUptime(span)}` : ""),
        spark(hist.req, "var(--accent)", "spark")),
      h("div", { class: "kpi", "data-kpi": "errors" },
        h("div", { class: "label" }, "Error rate"),
        h("div", { class: "value " + errClass }, errPct === null ? "—" : fmtPct(errPct), h("small", null, "of items")),
        h("div", { class: "sub" }, fmtInt(t.errors), " errors · ", fmtPct(100 * (t.error_rate || 0)), " overall"),
        spark(hist.err, "var(--bad)", "spark")),
      h("div", { class: "kpi small", "data-kpi": "performance" },
        h("div", { class: "label" }, "Performance layer"),
        h("div", { class: "pairs" },
          h("div", null, h("span", null, "cache hits"), h("b", { class: "num" }, fmtInt(t.cache_hits))),
          h("div", null, h("span", null, "coalesced"), h("b", { class: "num" }, fmtInt(t.coalesced))),
          h("div", null, h("span", null, "retries"), h("b", { class: "num" }, fmtInt(t.retries))),
          h("div", null, h("span", null, "rate-limited"), h("b", { class: "num" }, fmtInt(t.rate_limited)))),
        stack([[t.cache_hits || 0, "var(--accent)"], [Math.max(0, (t.requests || 0) - (t.cache_hits || 0)), "var(--none)"]],
          t.requests ? `${fmtPct(100 * (t.cache_hits || 0) / t.requests)} of items answered from cache` : "no traffic yet")),
      h("div", { class: "kpi small", "data-kpi": "integrity" },
        h("div", { class: "label" }, "Integrity"),
        h("div", { class: "pairs" }, ...INTEGRITY_STATUSES.map((s) =>
          h("div", null, h("span", null, s),
            h("b", { class: s === "bad" ? "t-bad" : s === "perfect" ? "t-ok" : "" },
              (doc.backends || []).filter((b) => (b.integrity || {}).status === s).length)))),
        stack(integrityMix(doc.backends || []), "nodes by integrity status")));
  }

  // "sentinel-off": the node's sentinel is disabled, so it cannot be judged (not a fault).
  const INTEGRITY_STATUSES = ["perfect", "good", "bad", "unknown", "sentinel-off"];
  const STATUS_COLOR = { perfect: "var(--ok2)", good: "var(--good)", bad: "var(--bad)", unknown: "var(--faint)",
    "sentinel-off": "var(--muted)" };
  const judged = (i) => ["perfect", "good", "bad"].includes(i.status);
  function integrityMix(bs) {
    return INTEGRITY_STATUSES.map((s) =>
      [bs.filter((b) => (b.integrity || {}).status === s).length, STATUS_COLOR[s]]);
  }

  // A thin stacked bar of [value, colour] parts with a caption.
  function stack(parts, caption) {
    const total = parts.reduce((a, p) => a + p[0], 0);
    return h("div", { class: "stack" },
      h("div", { class: "stackbar" }, total ? parts.filter((p) => p[0] > 0).map(([v, c]) =>
        h("i", { style: { width: (100 * v / total) + "%", background: c } })) : []),
      h("div", { class: "sub" }, caption));
  }

  // A node whose hashes differ from the fleet's at equal heights: forked (outvoted, so
  // unroutable) or disputed (no strict majority); finalized disagreement is marked critical.
  function forkMark(f) {
    const what = f.majority ? "forked" : "disputed";
    return h("span", { class: "tag fork " + (f.finalized ? "t-bad" : "t-warn"), "data-fork": what,
      title: `${what} at ${f.chain} ${f.height}: hash ${f.hash}` + (f.majority ? `, majority ${f.majority}` : "") },
      (f.finalized ? "⚠ finalized " : "⑂ ") + what + " @" + f.height);
  }

  function nodeRow(b) {
    const status = b.routable ? "routable" : "unroutable";
    const i = b.integrity || {};
    const lat = b.latency_ms || {};
    const analysed = judged(i);
    const lagClass = b.lag === null || b.lag === undefined ? "faint" : b.lag === 0 ? "t-ok" : /lag/i.test(b.reason || "") ? "t-bad" : "t-warn";
    const errShare = b.requests ? b.errors / b.requests : 0;
    return h("tr", { "data-node": b.name, "data-status": status },
      h("td", { "data-label": "Node", class: "node" },
        h("div", { class: "name" }, b.name),
        h("div", { class: "dim" }, [b.version && "v" + b.version, b.url].filter(Boolean).join(" · "))),
      h("td", { "data-label": "Status", "data-field": "status", class: "state" },
        h("span", { class: "pill s-" + status }, status),
        b.fork ? forkMark(b.fork) : "",
        h("div", { class: "reason", "data-field": "reason" }, b.reason || "")),
      h("td", { "data-label": "Kind" }, analysed
        ? h("span", { class: "tag " + b.kind }, b.kind)
        : h("span", { class: "faint", title: "known after the first integrity analysis" }, "—")),
      h("td", { "data-label": "Tip / lag" },
        h("div", { class: "num" }, fmtInt(b.tip)),
        h("div", { class: "dim" }, "lag ", h("span", { class: lagClass }, b.lag === null || b.lag === undefined ? "—" : fmtInt(b.lag)),
          b.proven ? ` · proven ${fmtInt(b.proven)}` : "")),
      h("td", { "data-label": "Latency ms" },
        h("div", { class: "num" }, fmtMs(lat.ewma), lat.ewma ? h("span", { class: "dim" }, " ewma") : ""),
        h("div", { class: "dim" }, `p50 ${fmtMs(lat.p50)} · p99 ${fmtMs(lat.p99)}`)),
      h("td", { "data-label": "Circuit" },
        h("span", { class: "c-" + b.circuit }, b.circuit),
        b.in_flight ? h("div", { class: "dim" }, `${b.in_flight} in flight`) : ""),
      h("td", { "data-label": "Requests" },
        h("div", { class: "num" }, fmtInt(b.requests),
          h("span", { class: errShare > 0.05 ? "t-bad" : errShare > 0 ? "t-warn" : "dim" }, ` / ${fmtInt(b.errors)} err`)),
        spark(hist.nodes.get(b.name) || [], "var(--accent)", "mini", 72, 20)),
      h("td", { "data-label": "Integrity", title: i.error || i.reason || "" },
        analysed
          ? h("div", { class: "score" }, h("b", null, i.score),
              h("span", { class: "bar" }, h("i", { style: { width: i.score + "%", background: scoreColor(i.score) } })),
              h("span", { class: i.status === "bad" ? "t-bad" : "dim" }, i.status))
          : h("span", { class: "faint", "data-integrity": i.status || "unknown" },
              i.error ? "check failed" : i.status === "sentinel-off" ? "sentinel off" : "not analysed"),
        analysed && (i.inconsistent_epochs || []).length + (i.missing_epochs || []).length
          ? h("div", { class: "dim" }, `${(i.inconsistent_epochs || []).length} inconsistent · ${(i.missing_epochs || []).length} missing`)
          : ""));
  }

  function renderFleet(doc) {
    const bs = doc.backends || [];
    $("nodes").replaceChildren(...bs.map(nodeRow));
    const kinds = bs.filter((b) => b.integrity && judged(b.integrity));
    const arch = kinds.filter((b) => b.kind === "archiver").length;
    $("fleet-aside").textContent = `${bs.length} node${bs.length === 1 ? "" : "s"}` +
      (kinds.length ? ` · ${arch} archiver · ${kinds.length - arch} pruned` : "");
  }

  // The heatmap is rebuilt only when its data changes, so hover tooltips survive polling.
  let heatKey = "";
  function renderHeatmap(doc) {
    const bs = doc.backends || [];
    const narrow = window.matchMedia("(max-width: 760px)").matches;
    const key = JSON.stringify([narrow, bs.map((b) => [b.name, b.integrity])]);
    const now = Date.now() / 1000;
    const checked = bs.map((b) => (b.integrity || {}).checked_at).filter(Boolean);
    $("heat-aside").textContent = checked.length ? "last analysis " + fmtAgo(now - Math.max(...checked)) : "";
    if (key === heatKey) return;
    heatKey = key;
    const root = $("heatmap");
    const epochSet = new Set();
    for (const b of bs) for (const e of (b.integrity || {}).epochs || []) epochSet.add(e.epoch);
    const epochs = [...epochSet].sort((a, b) => a - b).slice(-48);
    root.dataset.analysed = String(epochs.length > 0);
    if (!epochs.length) {
      root.replaceChildren(h("div", { class: "empty", "data-empty": "not-analysed" },
        h("strong", null, "Integrity not analysed yet"),
        "The sentinel history of each node is checked every INTEGRITY_CHECK_INTERVAL_MS; scores per epoch appear here after the first analysis.",
        h("ul", null, bs.map((b) => h("li", null, h("b", null, b.name), ": ",
          (b.integrity || {}).error || (b.integrity || {}).reason || (b.integrity || {}).status || "unknown")))));
      return;
    }
    const cols = { gridTemplateColumns: `repeat(${epochs.length}, minmax(12px, 1fr))` };
    const labelEvery = Math.max(1, Math.ceil(epochs.length / 12));
    const axis = narrow
      ? h("div", { class: "erange" }, h("span", null, epochs[0]), h("span", null, epochs[epochs.length - 1]))
      : h("div", { class: "cells", style: cols }, epochs.map((e, k) =>
        h("span", null, k % labelEvery === 0 || k === epochs.length - 1 ? e : "")));
    const rows = [h("div", { class: "hrow epochs" }, h("span", null, "epoch"), axis, h("span", { class: "tot" }, "score"))];
    for (const b of bs) rows.push(heatRow(b, epochs, cols));
    const legend = [["var(--ok2)", "100"], ["var(--good)", "95–99"], ["var(--warn)", "80–94"], ["var(--orange)", "50–79"],
      ["var(--bad)", "< 50"]].map(([c, l]) => h("span", null, h("i", { style: { background: c } }), l));
    legend.push(h("span", null, h("i", { class: "missing" }), "missing (no records)"));
    legend.push(h("span", null, h("i", { style: { border: "1px dashed var(--line)" } }), "outside node's window"));
    legend.push(h("span", null, "hover a cell for its issues"));
    root.replaceChildren(h("div", { class: "heat" }, rows), h("div", { class: "legend" }, legend));
  }

  function heatRow(b, epochs, cols) {
    const i = b.integrity || {};
    const byEpoch = new Map((i.epochs || []).map((e) => [e.epoch, e]));
    const missing = new Set(i.missing_epochs || []);
    const analysed = judged(i);
    const who = h("span", { class: "who", title: b.name }, b.name);
    if (!byEpoch.size) {
      const note = i.error ? "check failed: " + i.error : i.reason || "not analysed yet";
      return h("div", { class: "hrow", "data-node": b.name }, who,
        h("div", { class: "hnote" + (i.error ? " err" : ""), title: note }, note), h("span", { class: "tot faint" }, "—"));
    }
    const cells = epochs.map((ep) => {
      const e = byEpoch.get(ep);
      if (!e) return h("div", { class: "cell out", title: `${b.name} · epoch ${ep}: outside this node's analysed window` });
      const miss = missing.has(ep);
      const issues = (e.issues || []).length ? (e.issues || []).join("\n") : "no issues";
      return h("div", { class: "cell" + (miss ? " missing" : ""), "data-node": b.name, "data-epoch": ep, "data-score": e.score,
        style: miss ? null : { background: scoreColor(e.score) },
        title: `${b.name} · epoch ${ep} · score ${e.score}${miss ? " (missing)" : ""}\n${issues}` });
    });
    return h("div", { class: "hrow", "data-node": b.name }, who, h("div", { class: "cells", style: cols }, cells),
      h("span", { class: "tot", style: { color: analysed ? scoreColor(i.score) : "var(--faint)" }, title: i.status }, analysed ? i.score : "—"));
  }

  // ---- validator watch (GET /validators): symbols and text, never colour alone ----
  const VSYM = { ok: "✓", missed: "✗", disputed: "?", idle: "·", uncovered: "" };
  const VTEXT = { ok: "every duty done (agreed by every node covering it)", missed: "missed duties (agreed)",
    disputed: "nodes disagree: neither a miss nor a success", idle: "no duty (not in the committee)",
    uncovered: "no node has records for this epoch" };
  let dutiesKey = "";
  function renderDuties(doc) {
    const vs = (doc && doc.validators) || [];
    $("duties-section").hidden = vs.length === 0;
    const root = $("duties");
    root.dataset.watched = String(vs.length);
    $("duties-aside").textContent = doc && doc.checked_at ? "judged across nodes · " + fmtAgo(Date.now() / 1000 - doc.checked_at) : "";
    const key = JSON.stringify(vs);
    if (!vs.length || key === dutiesKey) return;
    dutiesKey = key;
    const epochSet = new Set();
    for (const v of vs) for (const c of v.epochs || []) epochSet.add(c.epoch);
    const epochs = [...epochSet].sort((a, b) => a - b).slice(-48);
    const cols = { gridTemplateColumns: `repeat(${Math.max(1, epochs.length)}, minmax(14px, 1fr))` };
    const rows = [h("div", { class: "hrow epochs" }, h("span", null, "validator"),
      epochs.length ? h("div", { class: "erange" }, h("span", null, epochs[0]), h("span", null, epochs[epochs.length - 1])) : h("span"),
      h("span", { class: "tot" }, "status"))];
    for (const v of vs) {
      const short = v.address.slice(0, 8) + "…" + v.address.slice(-4);
      const who = h("span", { class: "who", title: v.address }, short);
      const status = v.status === "missing-duties" ? `✗ missing (streak ${v.missed_streak_epochs})`
        : v.status === "healthy" ? "✓ healthy" : "? unknown";
      const stat = h("span", { class: "vstat", "data-status": v.status,
        title: `missed attestations ${v.missed_attestations}, missed proposals ${v.missed_proposals}, last duty slot ${v.last_duty_slot ?? "none"}` }, status);
      if (v.status === "unknown") {
        rows.push(h("div", { class: "hrow", "data-validator": v.address }, who,
          h("div", { class: "hnote" }, "unknown: no node's sentinel has this validator"), stat));
        continue;
      }
      const byEpoch = new Map((v.epochs || []).map((c) => [c.epoch, c]));
      const cells = epochs.map((ep) => {
        const c = byEpoch.get(ep) || { epoch: ep, state: "uncovered", missed: 0, duties: 0 };
        const count = c.state === "missed" ? ` (${c.missed} of ${c.duties})` : c.state === "ok" ? ` (${c.duties})` : "";
        return h("div", { class: "vcell", "data-validator": v.address, "data-epoch": ep, "data-state": c.state,
          "aria-label": `epoch ${ep}: ${c.state}`, title: `${v.address} · epoch ${ep}: ${VTEXT[c.state] || c.state}${count}` },
          VSYM[c.state] ?? "");
      });
      rows.push(h("div", { class: "hrow", "data-validator": v.address }, who, h("div", { class: "cells", style: cols }, cells), stat));
    }
    const legend = Object.keys(VSYM).map((k) => h("span", null, h("b", null, VSYM[k] || "▢"), " " + k + ": " + VTEXT[k]));
    root.replaceChildren(h("div", { class: "heat" }, rows), h("div", { class: "legend" }, legend));
  }
  async function pollDuties(headers) {
    try {
      const r = await fetch("/validators", { headers, cache: "no-store" });
      if (r.ok) renderDuties(await r.json());
    } catch (e) { /* the /health banner reports connectivity */ }
  }

  // ---- polling, auth, connection state ----
  // sessionStorage can be unavailable (sandboxed frames, strict privacy modes): then the token
  // lives only in this page's memory.
  const store = {
    get() { try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; } },
    set(v) { try { if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* memory only */ } },
  };
  let token = store.get();
  let lastOk = 0, updates = 0, failures = 0;
  function setState(s) { app.dataset.state = s; }

  async function poll() {
    const headers = { accept: "application/json" };
    if (token) headers.authorization = "Bearer " + token;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), Math.max(4000, REFRESH * 3));
    try {
      const r = await fetch("/health", { headers, cache: "no-store", signal: ctl.signal });
      const doc = r.status === 401 ? null : await r.json().catch(() => null);
      if (r.status === 401 || (doc && !Array.isArray(doc.backends) && doc.status)) {
        needToken(token ? "That token was not accepted." : "");
        return;
      }
      if (!doc) throw new Error(`HTTP ${r.status}: not a /health document`);
      const now = typeof doc.now_ms === "number" ? doc.now_ms : performance.now();
      track(doc, now);
      renderHeader(doc); renderKpis(doc); renderFleet(doc); renderHeatmap(doc);
      if (updates % 5 === 0) pollDuties(headers);
      lastOk = Date.now(); failures = 0; updates += 1;
      app.dataset.updates = String(updates);
      app.classList.remove("stale");
      $("banner").classList.remove("show");
      $("forget").hidden = !token;
      setState("live");
    } catch (e) {
      failures += 1;
      app.classList.add("stale");
      const b = $("banner");
      const why = e.name === "AbortError" ? "timed out" : e.message;
      b.textContent = `Cannot reach /health (${why}). ${updates ? "Showing the last data; r" : "R"}etrying every ${$("every").textContent}…`;
      b.classList.add("show");
      if (!updates) {
        setState("error");
        $("status").className = "pill s-unknown";
        $("status").textContent = "offline";
      }
    } finally {
      clearTimeout(timer);
    }
  }

  function needToken(msg) {
    setState("auth");
    $("auth-err").textContent = msg;
    $("status").className = "pill s-unknown";
    $("status").textContent = "locked";
    if (document.activeElement !== $("token")) $("token").focus();
  }

  $("auth-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("token").value.trim();
    store.set(token);
    $("token").value = "";
    $("auth-err").textContent = "checking…";
    poll();
  });
  $("forget-btn").addEventListener("click", () => {
    store.set("");
    token = "";
    poll();
  });

  function tickClock() {
    const dot = $("dot"), age = lastOk ? (Date.now() - lastOk) / 1000 : null;
    dot.className = "dot " + (age !== null && age < 5 ? "on" : lastOk || failures ? "off" : "");
    $("updated").textContent = app.dataset.state === "auth" ? "waiting for the admin token"
      : age === null ? (failures ? "no connection" : "connecting…")
      : age < 2 ? "live" : `updated ${fmtAgo(age)}`;
  }

  $("every").textContent = REFRESH >= 1000 ? `${REFRESH / 1000} s` : `${REFRESH} ms`;
  let busy = false;
  async function loop() {
    if (!busy && app.dataset.state !== "auth") {
      busy = true;
      try { await poll(); } finally { busy = false; }
    }
    tickClock();
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden) loop(); });
  loop();
  setInterval(loop, REFRESH);
})();
