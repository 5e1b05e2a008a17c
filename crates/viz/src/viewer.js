// The timeline's navigation: zoom, pan, culling, filters, tooltips, jumps and the cursor.
// Every timed element carries its start (data-a) and end (data-b) in microseconds.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("tl-data").textContent);
  var svg = document.getElementById("tl");
  var L = parseFloat(svg.dataset.left), W = parseFloat(svg.dataset.width);
  var END = Math.max(D.end, 1);
  var MAXVIS = 2500; // above this many messages in view, heartbeats and append acks are hidden
  var v0 = 0, v1 = END;
  var els = [];
  svg.querySelectorAll("[data-a]").forEach(function (e) {
    var a = +e.dataset.a, b = e.dataset.b === undefined ? a : +e.dataset.b;
    var kind = e.tagName === "line" ? (e.classList.contains("m") ? 3 : 4)
      : e.tagName === "rect" ? 1 : e.tagName === "text" ? 2 : 0;
    els.push({ e: e, a: a, b: b, k: kind, dx: +(e.dataset.dx || 0), y: e.dataset.y,
      light: e.classList.contains("k-heartbeat") || e.classList.contains("k-append-resp"),
      shown: true });
  });
  var hiddenNodes = {}, hiddenKinds = {};
  function X(t) { return L + (t - v0) * W / (v1 - v0); }
  function filtered(o) {
    var e = o.e;
    if (o.k !== 3) return false;
    if (hiddenNodes[e.dataset.f] || hiddenNodes[e.dataset.t]) return true;
    for (var k in hiddenKinds) if (hiddenKinds[k] && e.classList.contains("k-" + k)) return true;
    return false;
  }
  var pending = false;
  // Drawn at the next frame, or after 50 ms where frames do not come (a hidden tab,
  // a headless browser); whichever is first.
  function later() { if (pending) draw(); }
  function redraw() {
    if (!pending) { pending = true; requestAnimationFrame(later); setTimeout(later, 50); }
  }
  var draws = 0;
  function draw() {
    pending = false;
    var started = performance.now(), inView = 0, i, o;
    for (i = 0; i < els.length; i++) {
      o = els[i];
      o.vis = !(o.b < v0 || o.a > v1) && !filtered(o);
      if (o.vis && o.k === 3) inView++;
    }
    var thin = inView > MAXVIS;
    for (i = 0; i < els.length; i++) {
      o = els[i];
      var vis = o.vis && !(thin && o.light);
      if (vis !== o.shown) { o.e.style.display = vis ? "" : "none"; o.shown = vis; }
      if (!vis) continue;
      var e = o.e, xa = X(Math.max(o.a, v0 - (v1 - v0))), xb = X(Math.min(o.b, v1 + (v1 - v0)));
      if (o.k === 1) { e.setAttribute("x", xa.toFixed(1)); e.setAttribute("width", Math.max(xb - xa, 0.5).toFixed(1)); }
      else if (o.k === 2) {
        e.setAttribute("x", (Math.max(xa, L) + 2).toFixed(1));
        e.style.visibility = (xb - Math.max(xa, L) > 22) ? "" : "hidden";
      }
      else if (o.k === 3) { e.setAttribute("x1", X(o.a).toFixed(1)); e.setAttribute("x2", (X(o.b) + o.dx).toFixed(1)); }
      else if (o.k === 4) { e.setAttribute("x1", xa.toFixed(1)); e.setAttribute("x2", xa.toFixed(1)); }
      else { e.setAttribute("transform", "translate(" + xa.toFixed(1) + "," + o.y + ")"); }
    }
    axis();
    document.getElementById("status").textContent = thin
      ? inView + " messages in view: heartbeats and append acks hidden, zoom in to see them" : "";
    // Markers for checks in a headless browser: how many draws, when the first ended
    // (ms since the page started loading) and how long the last took.
    draws++;
    var now = performance.now();
    if (draws === 1) svg.setAttribute("data-first-draw-ms", now.toFixed(0));
    svg.setAttribute("data-draws", draws);
    svg.setAttribute("data-draw-ms", (now - started).toFixed(1));
  }
  function fmt(t) { return (t / 1e6).toFixed(t % 1e6 === 0 ? 0 : 3) + "s"; }
  function axis() {
    var g = document.getElementById("axis"), span = v1 - v0, raw = span / 10;
    var p = Math.pow(10, Math.floor(Math.log10(raw))), step = p;
    if (raw / p > 5) step = 10 * p; else if (raw / p > 2) step = 5 * p; else if (raw / p > 1) step = 2 * p;
    step = Math.max(1, step);
    var s = "", h = svg.getAttribute("height");
    for (var t = Math.ceil(v0 / step) * step; t <= v1; t += step) {
      var x = X(t).toFixed(1);
      s += '<g class="tick"><line x1="' + x + '" x2="' + x + '" y1="18" y2="' + h + '"/><text x="' + x + '" y="12">'
        + (step < 1000 ? (t / 1e3).toFixed(3) + "ms" : step < 1e6 ? (t / 1e3).toFixed(0) + "ms" : fmt(t)) + "</text></g>";
    }
    g.innerHTML = s;
  }
  function setView(a, b) {
    var span = Math.min(Math.max(b - a, 50), END * 1.05);
    if (a < 0) a = 0;
    if (a + span > END) a = Math.max(0, END - span);
    v0 = a; v1 = a + span; redraw();
  }
  function zoom(f, cx) {
    var t = v0 + (cx - L) / W * (v1 - v0);
    setView(t - (t - v0) * f, t + (v1 - t) * f);
  }
  function tAt(ev) {
    var r = svg.getBoundingClientRect();
    return { x: ev.clientX - r.left, t: v0 + (ev.clientX - r.left - L) / W * (v1 - v0) };
  }
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    zoom(ev.deltaY > 0 ? 1.25 : 0.8, tAt(ev).x);
  }, { passive: false });
  var drag = null;
  svg.addEventListener("mousedown", function (ev) { drag = { x: ev.clientX, a: v0, b: v1 }; svg.classList.add("drag"); });
  window.addEventListener("mouseup", function () { drag = null; svg.classList.remove("drag"); });
  window.addEventListener("mousemove", function (ev) {
    if (drag) {
      var dt = (ev.clientX - drag.x) / W * (drag.b - drag.a);
      setView(drag.a - dt, drag.b - dt);
    }
  });
  function btn(id, f) { var b = document.getElementById(id); if (b) b.addEventListener("click", f); }
  btn("zin", function () { zoom(0.5, L + W / 2); });
  btn("zout", function () { zoom(2, L + W / 2); });
  btn("zall", function () { setView(0, END); });
  function jumpTo(t) {
    var span = Math.min(v1 - v0, END / 20);
    setView(t - span / 2, t + span / 2);
  }
  function next(list) {
    var c = (v0 + v1) / 2 + 1;
    for (var i = 0; i < list.length; i++) if (list[i] > c) return jumpTo(list[i]);
    if (list.length) jumpTo(list[0]);
  }
  btn("jelec", function () { next(D.elections); });
  btn("jfault", function () { next(D.faults); });
  btn("jviol", function () { if (D.violation !== null) jumpTo(D.violation); });
  document.querySelectorAll(".fnode").forEach(function (c) {
    c.addEventListener("change", function () { hiddenNodes[c.value] = !c.checked; redraw(); });
  });
  document.querySelectorAll(".fkind").forEach(function (c) {
    c.addEventListener("change", function () { hiddenKinds[c.value] = !c.checked; redraw(); });
  });
  var tip = document.getElementById("tip");
  svg.addEventListener("mouseover", function (ev) {
    var t = ev.target.dataset && ev.target.dataset.tip;
    if (!t) return;
    tip.textContent = t; tip.style.display = "block";
  });
  svg.addEventListener("mouseout", function () { tip.style.display = "none"; });
  var ROLES = ["follower", "candidate", "LEADER", "DOWN"];
  function stateAt(rows, t) {
    var lo = 0, hi = rows.length - 1, best = -1;
    while (lo <= hi) { var m = (lo + hi) >> 1; if (rows[m][0] <= t) { best = m; lo = m + 1; } else hi = m - 1; }
    return best < 0 ? null : rows[best];
  }
  var cursor = document.getElementById("cursor"), readout = document.getElementById("readout");
  svg.addEventListener("mousemove", function (ev) {
    tip.style.left = (ev.clientX + 14) + "px"; tip.style.top = (ev.clientY + 14) + "px";
    var p = tAt(ev);
    if (p.x < L || p.x > L + W) return;
    cursor.setAttribute("x1", p.x.toFixed(1)); cursor.setAttribute("x2", p.x.toFixed(1));
    var t = Math.round(p.t), s = "at " + (t / 1e6).toFixed(6) + "s\n";
    for (var i = 0; i < D.nodes.length; i++) {
      var r = stateAt(D.states[i], t);
      s += "n" + D.nodes[i] + "  " + (r ? (r[1] === 3 ? "DOWN" : ROLES[r[1]] + " term " + r[2] + " commit " + r[3] + " applied " + r[4]) : "-") + "\n";
    }
    readout.textContent = s;
  });
  // The log view: every node's log at a chosen instant, as boxes coloured by term,
  // rebuilt by replaying the node's log writes up to that instant.
  function logAt(ops, t) {
    var base = 0, baseTerm = 0, terms = [];
    for (var i = 0; i < ops.length && ops[i][0] <= t; i++) {
      var o = ops[i];
      if (o[1]) { base = o[3]; baseTerm = o[4]; terms = o[6].slice(); continue; }
      if (o[2] > 0) terms.length = Math.max(0, Math.min(terms.length, o[2] - 1 - base));
      if (o[3] > 0) {
        var k = o[3] - base;
        if (k >= 1 && k <= terms.length && terms[k - 1] === o[4]) terms = terms.slice(k); else terms = [];
        base = o[3]; baseTerm = o[4];
      }
      if (o[6].length) {
        terms.length = Math.max(0, Math.min(terms.length, o[5] - 1 - base));
        for (var j = 0; j < o[6].length; j++) terms.push(o[6][j]);
      }
    }
    return { base: base, baseTerm: baseTerm, terms: terms };
  }
  function hue(term) { return "hsl(" + ((term * 67) % 360) + ",65%,72%)"; }
  var logview = document.getElementById("logview");
  function showLogs(t) {
    if (!logview || !D.logs) return;
    var logs = [], hi = 1, i;
    for (i = 0; i < D.nodes.length; i++) {
      logs.push(logAt(D.logs[i], t));
      hi = Math.max(hi, logs[i].base + logs[i].terms.length);
    }
    var BOX = 9, N = 120, lo = Math.max(1, hi - N + 1), X0 = 40;
    var h = '<b>Logs at ' + (t / 1e6).toFixed(6) + 's</b> (indices ' + lo + '..' + hi
      + '; box colour = term, black bar after the commit index, blue triangle under the last applied; click the timeline to choose another instant)<br>';
    h += '<svg width="' + (X0 + N * BOX + 60) + '" height="' + (D.nodes.length * 30 + 16) + '">';
    for (var x = Math.ceil(lo / 10) * 10; x <= hi; x += 10)
      h += '<text class="lvi" x="' + (X0 + (x - lo) * BOX) + '" y="10">' + x + '</text>';
    for (i = 0; i < D.nodes.length; i++) {
      var L2 = logs[i], y = 16 + i * 30, st = stateAt(D.states[i], t);
      h += '<text class="lvn" x="0" y="' + (y + 12) + '">n' + D.nodes[i] + '</text>';
      if (L2.base >= lo) h += '<rect x="' + (X0 + (L2.base - lo) * BOX) + '" y="' + y + '" width="' + (BOX - 1) + '" height="16" fill="#888"><title>snapshot through ' + L2.base + '@' + L2.baseTerm + '</title></rect>';
      for (var k = 0; k < L2.terms.length; k++) {
        var idx = L2.base + 1 + k;
        if (idx < lo) continue;
        h += '<rect x="' + (X0 + (idx - lo) * BOX) + '" y="' + y + '" width="' + (BOX - 1) + '" height="16" fill="' + hue(L2.terms[k]) + '"><title>n' + D.nodes[i] + ' entry ' + idx + ', term ' + L2.terms[k] + '</title></rect>';
      }
      if (st && st[1] !== 3) {
        var cx = X0 + (st[3] - lo + 1) * BOX - 0.5;
        if (st[3] >= lo) h += '<line x1="' + cx + '" x2="' + cx + '" y1="' + (y - 2) + '" y2="' + (y + 18) + '" stroke="#000" stroke-width="2"><title>commit ' + st[3] + '</title></line>';
        var ax = X0 + (st[4] - lo) * BOX + BOX / 2;
        if (st[4] >= lo) h += '<path d="M' + ax + ',' + (y + 17) + 'l-4,6h8z" fill="#06c"><title>applied ' + st[4] + '</title></path>';
      }
      h += '<text class="lvn" x="' + (X0 + N * BOX + 8) + '" y="' + (y + 12) + '">' + (st ? (st[1] === 3 ? "down" : "t" + st[2]) : "") + '</text>';
    }
    logview.innerHTML = h + '</svg>';
  }
  var downAt = null;
  svg.addEventListener("mousedown", function (ev) { downAt = ev.clientX; });
  svg.addEventListener("click", function (ev) {
    if (downAt !== null && Math.abs(ev.clientX - downAt) > 3) return; // a drag, not a click
    var p = tAt(ev);
    if (p.x >= L && p.x <= L + W) showLogs(Math.round(p.t));
  });
  // A link to a moment: #view=FROM,TO in virtual seconds opens the page zoomed there.
  var m = /view=([0-9.]+),([0-9.]+)/.exec(location.hash);
  if (m) setView(parseFloat(m[1]) * 1e6, parseFloat(m[2]) * 1e6);
  draw(); // the first view at once, before the page counts as loaded
  // #logs=T (virtual seconds) opens the log view at that instant.
  var lg = /logs=([0-9.]+)/.exec(location.hash);
  if (lg) showLogs(parseFloat(lg[1]) * 1e6);
})();
