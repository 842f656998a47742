/* attnlab attention viewer (an offline bertviz): head view, model view, heatmap view, exports.
 *
 * Each viewer is a root element `.attnlab-viewer[data-attnlab-viewer]` holding its payloads as JSON in a
 * child script element of type application/json (class attnlab-viewer-data); this script defines one namespace,
 * `window.attnlabViewer`, and initialises every root once (`data-attnlab-ready`). Nothing global besides the
 * namespace; no ids inside a viewer; tokens reach the page only as text nodes (textContent), never as markup;
 * no network request of any kind (exports are blob: downloads, the PNG is drawn from a data: SVG).
 *
 * Payload: {title, kind: "self"|"cross", query_tokens[T], key_tokens[S], layers[L][nh][T][S]} (rows: queries).
 */
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";
  var XML_NS = "http://www.w3.org/XML/1998/namespace";
  var FONT_FAMILY = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif";
  var FONT_SIZE = 13;
  var INK = "#1d2330";
  var MUTED = "#5b6475";
  var HEAT = "#1f5fbf";
  var SELECT = "#d62728";
  var PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a"
  ];
  var MAX_THUMB_CELLS = 32; // a model-view thumbnail has at most this many cells a side
  var VIEWS = [["head", "Head view"], ["model", "Model view"], ["heatmap", "Heatmap"]];

  function makeNamespace() {
    var measureCtx = null;

    // ------------------------------------------------------------------------------------------ helpers

    function el(tag, attrs, parent) {
      var node = document.createElement(tag);
      setAttrs(node, attrs);
      if (parent) parent.appendChild(node);
      return node;
    }

    function svgEl(tag, attrs, parent) {
      var node = document.createElementNS(SVG_NS, tag);
      setAttrs(node, attrs);
      if (parent) parent.appendChild(node);
      return node;
    }

    function setAttrs(node, attrs) {
      if (!attrs) return;
      for (var key in attrs) {
        if (Object.prototype.hasOwnProperty.call(attrs, key) && attrs[key] !== null && attrs[key] !== undefined) {
          node.setAttribute(key, String(attrs[key]));
        }
      }
    }

    function svgText(parent, text, attrs) {
      var node = svgEl("text", attrs, parent);
      node.textContent = text; // a text node: the token can never become markup
      return node;
    }

    function fmt(w) {
      return String(Math.round(w * 1e5) / 1e5);
    }

    // The mean of w[i0 .. i0+step) [j0 .. j0+step), clipped at the matrix's edges.
    function blockMean(w, i0, j0, step) {
      var sum = 0, n = 0;
      for (var i = i0; i < Math.min(i0 + step, w.length); i++) {
        for (var j = j0; j < Math.min(j0 + step, w[i].length); j++) { sum += w[i][j]; n++; }
      }
      return sum / n;
    }

    function headColor(h) {
      if (h < PALETTE.length) return PALETTE[h];
      return "hsl(" + Math.round((h * 137.508) % 360) + ", 60%, 45%)";
    }

    // What a token looks like on screen: invisible characters get visible stand-ins.
    function shown(token) {
      if (token === "") return "\u2205";
      var out = token.replace(/\r/g, "\u240d").replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5");
      return /^ +$/.test(out) ? out.replace(/ /g, "\u2423") : out;
    }

    function textWidth(text) {
      if (!measureCtx) {
        measureCtx = document.createElement("canvas").getContext("2d");
      }
      if (!measureCtx) return text.length * FONT_SIZE * 0.62;
      measureCtx.font = FONT_SIZE + "px " + FONT_FAMILY;
      return Math.ceil(measureCtx.measureText(text).width);
    }

    function boldWidth(text) {
      return Math.ceil(textWidth(text) * 1.12); // bold glyphs are wider than the regular ones measured
    }

    function maxWidth(tokens) {
      var m = 0;
      for (var i = 0; i < tokens.length; i++) m = Math.max(m, textWidth(shown(tokens[i])));
      return m;
    }

    function newSvg(cls, width, height) {
      var svg = svgEl("svg", {
        "class": "av-svg " + cls,
        width: Math.ceil(width),
        height: Math.ceil(height),
        viewBox: "0 0 " + Math.ceil(width) + " " + Math.ceil(height),
        "font-family": FONT_FAMILY,
        "font-size": FONT_SIZE,
        fill: INK
      });
      svg.setAttributeNS(XML_NS, "xml:space", "preserve");
      svgEl("rect", { x: 0, y: 0, width: Math.ceil(width), height: Math.ceil(height), fill: "#ffffff" }, svg);
      return svg;
    }

    function slug(text) {
      var s = String(text || "").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
      return (s || "attention").slice(0, 48);
    }

    function download(root, blob, filename) {
      var url = URL.createObjectURL(blob);
      var a = el("a", { href: url, download: filename, "class": "av-download" }, root);
      a.click();
      root.removeChild(a);
      setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
    }

    function serialize(svg) {
      var copy = svg.cloneNode(true);
      copy.setAttribute("xmlns", SVG_NS);
      return '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(copy);
    }

    // --------------------------------------------------------------------------------------- one viewer

    function Viewer(root, payloads) {
      this.root = root;
      this.payloads = payloads;
      this.st = { p: 0, layer: 0, head: 0, view: "head", locked: null, hover: null };
      this.build();
      this.selectPayload(0);
    }

    Viewer.prototype.payload = function () {
      return this.payloads[this.st.p];
    };

    // The (T, S) matrix on show: one head's, or the mean over heads when "all" is selected.
    Viewer.prototype.matrix = function () {
      var heads = this.payload().layers[this.st.layer];
      if (this.st.head !== "all") return heads[this.st.head];
      var T = heads[0].length, S = heads[0][0].length, nh = heads.length, out = [];
      for (var i = 0; i < T; i++) {
        var row = [];
        for (var j = 0; j < S; j++) {
          var sum = 0;
          for (var h = 0; h < nh; h++) sum += heads[h][i][j];
          row.push(sum / nh);
        }
        out.push(row);
      }
      return out;
    };

    Viewer.prototype.selectionText = function () {
      var heads = this.payload().layers[this.st.layer];
      var head = this.st.head === "all" ? "all " + heads.length + " heads" : "head " + this.st.head;
      return "layer " + this.st.layer + ", " + head;
    };

    Viewer.prototype.build = function () {
      var self = this, root = this.root;
      var bar = el("div", { "class": "av-bar" }, root);

      var mapLabel = el("label", { "class": "av-field" }, bar);
      mapLabel.appendChild(document.createTextNode("Map "));
      this.payloadSelect = el("select", { "class": "av-payload" }, mapLabel);
      for (var i = 0; i < this.payloads.length; i++) {
        this.payloadSelect.appendChild(new Option((i + 1) + ". " + this.payloads[i].title, String(i)));
      }
      if (this.payloads.length < 2) this.payloadSelect.disabled = true;

      var layerLabel = el("label", { "class": "av-field" }, bar);
      layerLabel.appendChild(document.createTextNode("Layer "));
      this.layerSelect = el("select", { "class": "av-layer" }, layerLabel);

      var headLabel = el("label", { "class": "av-field" }, bar);
      headLabel.appendChild(document.createTextNode("Head "));
      this.headSelect = el("select", { "class": "av-head" }, headLabel);

      var tabs = el("span", { "class": "av-tabs", role: "group", "aria-label": "View" }, bar);
      this.tabs = {};
      VIEWS.forEach(function (v) {
        var b = el("button", { type: "button", "class": "av-tab", "data-view": v[0] }, tabs);
        b.textContent = v[1];
        b.addEventListener("click", function () { self.showView(v[0]); });
        self.tabs[v[0]] = b;
      });

      var exports = el("span", { "class": "av-exports", role: "group", "aria-label": "Export" }, bar);
      [["svg", "SVG", "the current view as SVG"], ["png", "PNG", "the current view as PNG"],
       ["json", "JSON", "this attention map as JSON"]].forEach(function (x) {
        var b = el("button", { type: "button", "class": "av-export", "data-format": x[0], title: "Download " + x[2] },
                   exports);
        b.textContent = x[1];
        b.addEventListener("click", function () { self.exportAs(x[0]); });
      });

      this.caption = el("div", { "class": "av-caption" }, root);
      var views = el("div", { "class": "av-views" }, root);
      this.views = {};
      VIEWS.forEach(function (v) {
        self.views[v[0]] = el("div", { "class": "av-view av-view-" + v[0], "data-view": v[0] }, views);
      });
      this.readout = el("div", { "class": "av-readout", "aria-live": "polite" }, root);

      this.payloadSelect.addEventListener("change", function () { self.selectPayload(+self.payloadSelect.value); });
      this.layerSelect.addEventListener("change", function () { self.select(+self.layerSelect.value, self.st.head); });
      this.headSelect.addEventListener("change", function () {
        var v = self.headSelect.value;
        self.select(self.st.layer, v === "all" ? "all" : +v);
      });
    };

    Viewer.prototype.selectPayload = function (p) {
      var st = this.st;
      st.p = p;
      st.layer = 0;
      var nh = this.payload().layers[0].length;
      st.head = nh > 1 ? "all" : 0;
      st.locked = null;
      st.hover = null;
      this.payloadSelect.value = String(p);
      this.layerSelect.textContent = "";
      for (var l = 0; l < this.payload().layers.length; l++) this.layerSelect.appendChild(new Option(String(l), String(l)));
      this.headSelect.textContent = "";
      this.headSelect.appendChild(new Option("all", "all"));
      for (var h = 0; h < nh; h++) this.headSelect.appendChild(new Option(String(h), String(h)));
      var pl = this.payload();
      this.caption.textContent = pl.title + " \u2014 " + (pl.kind === "cross" ? "cross-attention" : "self-attention") +
        ", " + pl.layers.length + " layer" + (pl.layers.length > 1 ? "s" : "") + " \u00d7 " + nh + " head" +
        (nh > 1 ? "s" : "") + ", " + pl.query_tokens.length + " query \u00d7 " + pl.key_tokens.length + " key tokens";
      this.renderModel();
      this.select(0, st.head);
      this.showView(st.view);
    };

    Viewer.prototype.select = function (layer, head) {
      this.st.layer = layer;
      this.st.head = head;
      this.layerSelect.value = String(layer);
      this.headSelect.value = String(head);
      this.renderHead();
      this.renderHeatmap();
      this.markModel();
    };

    Viewer.prototype.showView = function (view) {
      this.st.view = view;
      for (var name in this.views) {
        var on = name === view;
        this.views[name].classList.toggle("av-hidden", !on);
        this.tabs[name].setAttribute("aria-pressed", on ? "true" : "false");
      }
    };

    // ------------------------------------------------------------------------------------- head view

    Viewer.prototype.renderHead = function () {
      var self = this, pl = this.payload(), st = this.st;
      var q = pl.query_tokens, k = pl.key_tokens, heads = pl.layers[st.layer];
      var cross = pl.kind === "cross";
      var qHeader = cross ? "query (target)" : "query", kHeader = cross ? "key (source)" : "key";
      var rowH = 20, top = 46, pad = 6, gap = 140;
      var qW = Math.max(maxWidth(q), textWidth(qHeader), 40) + 2 * pad;
      var kW = Math.max(maxWidth(k), textWidth(kHeader), 40) + 2 * pad;
      var x0 = 8, x1 = x0 + qW, x2 = x1 + gap, width = x2 + kW + 8;
      var rows = Math.max(q.length, k.length);
      var all = st.head === "all", shownHeads = all ? heads.map(function (_, h) { return h; }) : [st.head];
      var legendH = all ? 26 : 0;
      var height = top + rows * rowH + 10 + legendH;
      width = Math.max(width, all ? 8 + heads.length * 44 : 0, boldWidth(this.selectionText()) + 16, 260);
      var svg = newSvg("av-svg-head", width, height);
      svgText(svg, this.selectionText(), { x: x0, y: 16, "font-weight": "bold" });
      svgText(svg, qHeader, { x: x1 - pad, y: 36, "text-anchor": "end", fill: MUTED });
      svgText(svg, kHeader, { x: x2 + pad, y: 36, fill: MUTED });

      var lines = svgEl("g", { "class": "av-lines", "stroke-width": 2, "stroke-linecap": "round" }, svg);
      var yOf = function (i) { return top + i * rowH + rowH / 2; };
      this.lines = [];
      shownHeads.forEach(function (h) {
        var color = headColor(h), w = heads[h];
        for (var i = 0; i < q.length; i++) {
          for (var j = 0; j < k.length; j++) {
            self.lines.push(svgEl("line", {
              "class": "av-line", x1: x1 + 2, y1: yOf(i), x2: x2 - 2, y2: yOf(j),
              stroke: color, "stroke-opacity": fmt(w[i][j]),
              "data-q": i, "data-k": j, "data-head": h, "data-w": w[i][j]
            }, lines));
          }
        }
      });

      this.tokenNodes = { q: [], k: [] };
      var addColumn = function (side, tokens, x, w, anchorEnd) {
        var g = svgEl("g", { "class": "av-tokens av-tokens-" + side }, svg);
        tokens.forEach(function (tok, i) {
          var t = svgEl("g", {
            "class": "av-token", "data-side": side, "data-index": i, tabindex: 0, role: "button",
            "aria-label": (side === "q" ? "query " : "key ") + i
          }, g);
          var bg = svgEl("rect", {
            "class": "av-token-bg", x: x, y: top + i * rowH + 1, width: w, height: rowH - 2, rx: 3,
            fill: INK, "fill-opacity": 0
          }, t);
          var label = svgText(t, shown(tok), {
            "class": "av-token-text", x: anchorEnd ? x + w - pad : x + pad, y: yOf(i) + 4.5,
            "text-anchor": anchorEnd ? "end" : "start"
          });
          label.setAttribute("data-token", tok);
          t.addEventListener("mouseenter", function () { self.hover(side, i); });
          t.addEventListener("mouseleave", function () { self.hover(null, null); });
          t.addEventListener("click", function () { self.toggleLock(side, i); });
          t.addEventListener("keydown", function (ev) {
            if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); self.toggleLock(side, i); }
          });
          self.tokenNodes[side].push({ g: t, bg: bg });
        });
      };
      addColumn("q", q, x0, qW, true);
      addColumn("k", k, x2, kW, false);

      if (all) {
        var legend = svgEl("g", { "class": "av-legend" }, svg);
        var ly = top + rows * rowH + 14;
        heads.forEach(function (_, h) {
          var item = svgEl("g", { "class": "av-legend-item", "data-head": h, role: "button", tabindex: 0 }, legend);
          svgEl("rect", { x: x0 + h * 44, y: ly, width: 12, height: 12, rx: 2, fill: headColor(h) }, item);
          svgText(item, "H" + h, { x: x0 + h * 44 + 16, y: ly + 10.5, "font-size": 11, fill: MUTED });
          item.addEventListener("click", function () { self.select(st.layer, h); });
        });
      }
      this.views.head.textContent = "";
      this.views.head.appendChild(svg);
      this.headSvg = svg;
      if (st.locked && !this.validFocus(st.locked)) st.locked = null;
      st.hover = null;
      this.applyFocus();
    };

    Viewer.prototype.validFocus = function (f) {
      var n = f.side === "q" ? this.payload().query_tokens.length : this.payload().key_tokens.length;
      return f.index < n;
    };

    Viewer.prototype.hover = function (side, index) {
      if (this.st.locked) return; // a locked token keeps its links until it is clicked again
      this.st.hover = side === null ? null : { side: side, index: index };
      this.applyFocus();
    };

    Viewer.prototype.toggleLock = function (side, index) {
      var l = this.st.locked;
      if (l && l.side === side && l.index === index) {
        this.st.locked = null;
        this.st.hover = { side: side, index: index }; // the pointer is still on it
      } else {
        this.st.locked = { side: side, index: index };
      }
      this.applyFocus();
    };

    // Show only the focused token's links; shade the tokens on the other side by their weight.
    Viewer.prototype.applyFocus = function () {
      var st = this.st, focus = st.locked || st.hover, i;
      var svg = this.headSvg;
      svg.setAttribute("data-focus", focus ? focus.side + ":" + focus.index : "");
      svg.setAttribute("data-locked", st.locked ? "true" : "false");
      for (i = 0; i < this.lines.length; i++) {
        var line = this.lines[i];
        var on = !focus || +line.getAttribute(focus.side === "q" ? "data-q" : "data-k") === focus.index;
        if (on) line.removeAttribute("display");
        else line.setAttribute("display", "none");
      }
      var m = focus ? this.matrix() : null;
      var self = this;
      ["q", "k"].forEach(function (side) {
        self.tokenNodes[side].forEach(function (node, idx) {
          var isFocus = !!focus && focus.side === side && focus.index === idx;
          node.g.classList.toggle("av-focus", isFocus);
          node.g.classList.toggle("av-locked", isFocus && !!st.locked);
          var shade = 0;
          if (isFocus) shade = 0.14;
          else if (focus && focus.side !== side) shade = side === "k" ? m[focus.index][idx] : m[idx][focus.index];
          node.bg.setAttribute("fill", isFocus ? INK : (st.head === "all" ? HEAT : headColor(st.head)));
          node.bg.setAttribute("fill-opacity", fmt(shade));
        });
      });
      if (focus) {
        var pl = this.payload();
        var tok = focus.side === "q" ? pl.query_tokens[focus.index] : pl.key_tokens[focus.index];
        this.readout.textContent = (st.locked ? "Locked on " : "") + (focus.side === "q" ? "query " : "key ") +
          focus.index + " \u201c" + tok + "\u201d" + (st.locked ? " (click it again to unlock)" : "");
      } else {
        this.readout.textContent = "";
      }
    };

    // ------------------------------------------------------------------------------------ model view

    Viewer.prototype.renderModel = function () {
      var self = this, pl = this.payload();
      var L = pl.layers.length, nh = pl.layers[0].length, T = pl.query_tokens.length, S = pl.key_tokens.length;
      // long sequences: each thumbnail cell is the mean of a step x step block (at most 32 x 32 cells a map)
      var step = Math.ceil(Math.max(T, S) / MAX_THUMB_CELLS);
      var rows = Math.ceil(T / step), cols = Math.ceil(S / step);
      var cell = Math.max(2, Math.floor(64 / Math.max(rows, cols)));
      var tw = cols * cell, th = rows * cell, gap = 10, left = 34, top = 40;
      var title = "layers \u00d7 heads (click one to select it)";
      var width = Math.max(left + nh * (tw + gap) + 4, boldWidth(title) + 16, 260);
      var height = top + L * (th + gap) + 4;
      var svg = newSvg("av-svg-model", width, height);
      svgText(svg, title, { x: 8, y: 16, "font-weight": "bold" });
      for (var h = 0; h < nh; h++) {
        svgText(svg, "H" + h, { x: left + h * (tw + gap) + tw / 2, y: top - 8, "text-anchor": "middle",
                                "font-size": 11, fill: MUTED });
      }
      this.thumbs = [];
      for (var l = 0; l < L; l++) {
        svgText(svg, "L" + l, { x: left - 6, y: top + l * (th + gap) + th / 2 + 4, "text-anchor": "end",
                                "font-size": 11, fill: MUTED });
        for (h = 0; h < nh; h++) {
          var gx = left + h * (tw + gap), gy = top + l * (th + gap);
          var g = svgEl("g", { "class": "av-thumb", "data-layer": l, "data-head": h, role: "button", tabindex: 0,
                               transform: "translate(" + gx + "," + gy + ")" }, svg);
          svgEl("title", null, g).textContent = "layer " + l + ", head " + h;
          var w = pl.layers[l][h];
          for (var i = 0; i < rows; i++) {
            for (var j = 0; j < cols; j++) {
              var v = step === 1 ? w[i][j] : blockMean(w, i * step, j * step, step);
              svgEl("rect", { "class": "av-cell", x: j * cell, y: i * cell, width: cell, height: cell, fill: HEAT,
                              "fill-opacity": fmt(v), "data-q": i * step, "data-k": j * step, "data-w": v,
                              "data-step": step }, g);
            }
          }
          var frame = svgEl("rect", { "class": "av-frame", x: -1.5, y: -1.5, width: tw + 3, height: th + 3,
                                      fill: "none", stroke: "#c9ced8", "stroke-width": 1 }, g);
          (function (l, h, g) {
            var pick = function () { self.select(l, h); };
            g.addEventListener("click", pick);
            g.addEventListener("keydown", function (ev) {
              if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); pick(); }
            });
          })(l, h, g);
          this.thumbs.push({ layer: l, head: h, g: g, frame: frame });
        }
      }
      this.views.model.textContent = "";
      this.views.model.appendChild(svg);
      this.modelSvg = svg;
    };

    Viewer.prototype.markModel = function () {
      var st = this.st;
      this.thumbs.forEach(function (t) {
        var on = t.layer === st.layer && (st.head === "all" || st.head === t.head);
        t.g.classList.toggle("av-selected", on);
        t.frame.setAttribute("stroke", on ? SELECT : "#c9ced8");
        t.frame.setAttribute("stroke-width", on ? 2 : 1);
      });
    };

    // ---------------------------------------------------------------------------------- heatmap view

    Viewer.prototype.renderHeatmap = function () {
      var self = this, pl = this.payload(), st = this.st;
      var q = pl.query_tokens, k = pl.key_tokens, m = this.matrix();
      var T = q.length, S = k.length;
      var cell = Math.max(10, Math.min(32, Math.floor(560 / Math.max(T, S))));
      var left = maxWidth(q) + 16, topLabels = maxWidth(k) + 14, top = 30 + topLabels;
      var what = (st.head === "all" ? "layer " + st.layer + ", mean of " + pl.layers[st.layer].length + " heads"
                                    : this.selectionText()) + " (rows: query, columns: key)";
      var width = Math.max(left + S * cell + 10, boldWidth(what) + 16, 260), height = top + T * cell + 10;
      var svg = newSvg("av-svg-heatmap", width, height);
      svgText(svg, what, { x: 8, y: 16, "font-weight": "bold" });
      var rowLabels = [], colLabels = [];
      for (var i = 0; i < T; i++) {
        var rl = svgText(svg, shown(q[i]), { "class": "av-row-label", x: left - 6, y: top + i * cell + cell / 2 + 4.5,
                                             "text-anchor": "end", "data-index": i });
        rl.setAttribute("data-token", q[i]);
        rowLabels.push(rl);
      }
      for (var j = 0; j < S; j++) {
        var cx = left + j * cell + cell / 2 + 4.5;
        var cl = svgText(svg, shown(k[j]), { "class": "av-col-label", x: 0, y: 0, "data-index": j,
                                             transform: "translate(" + cx + "," + (top - 6) + ") rotate(-90)" });
        cl.setAttribute("data-token", k[j]);
        colLabels.push(cl);
      }
      var cells = svgEl("g", { "class": "av-cells" }, svg);
      for (i = 0; i < T; i++) {
        for (j = 0; j < S; j++) {
          var r = svgEl("rect", { "class": "av-cell", x: left + j * cell, y: top + i * cell, width: cell, height: cell,
                                  fill: HEAT, "fill-opacity": fmt(m[i][j]), stroke: "#ffffff", "stroke-width": 0.5,
                                  "data-q": i, "data-k": j, "data-w": m[i][j] }, cells);
          var tip = q[i] + " \u2192 " + k[j] + ": " + m[i][j].toFixed(4);
          svgEl("title", null, r).textContent = tip;
          (function (i, j, tip) {
            r.addEventListener("mouseenter", function () {
              self.readout.textContent = "query " + i + " \u2192 key " + j + ": " + tip;
              rowLabels[i].setAttribute("font-weight", "bold");
              colLabels[j].setAttribute("font-weight", "bold");
            });
            r.addEventListener("mouseleave", function () {
              self.readout.textContent = "";
              rowLabels[i].removeAttribute("font-weight");
              colLabels[j].removeAttribute("font-weight");
            });
          })(i, j, tip);
        }
      }
      svgEl("rect", { x: left, y: top, width: S * cell, height: T * cell, fill: "none", stroke: "#c9ced8" }, svg);
      this.views.heatmap.textContent = "";
      this.views.heatmap.appendChild(svg);
      this.heatmapSvg = svg;
    };

    // --------------------------------------------------------------------------------------- exports

    Viewer.prototype.fileStem = function () {
      var h = this.st.head === "all" ? "all" : "h" + this.st.head;
      return slug(this.payload().title) + "-" + this.st.view + "-l" + this.st.layer + "-" + h;
    };

    Viewer.prototype.exportAs = function (format) {
      var self = this;
      var svg = { head: this.headSvg, model: this.modelSvg, heatmap: this.heatmapSvg }[this.st.view];
      if (format === "json") {
        var text = JSON.stringify(this.payload(), null, 1) + "\n";
        download(this.root, new Blob([text], { type: "application/json" }), slug(this.payload().title) + ".json");
        return;
      }
      var xml = serialize(svg);
      if (format === "svg") {
        download(this.root, new Blob([xml], { type: "image/svg+xml" }), this.fileStem() + ".svg");
        return;
      }
      var w = +svg.getAttribute("width"), h = +svg.getAttribute("height");
      var scale = Math.max(1, Math.min(2, Math.sqrt(16e6 / (w * h)))); // at most 16 megapixels
      var image = new Image(); // never attached to the document
      image.onload = function () {
        var canvas = document.createElement("canvas");
        canvas.width = Math.round(w * scale);
        canvas.height = Math.round(h * scale);
        var ctx = canvas.getContext("2d");
        ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
        canvas.toBlob(function (blob) {
          if (blob) download(self.root, blob, self.fileStem() + ".png");
          else self.readout.textContent = "PNG export failed: the browser could not encode the image";
        }, "image/png");
      };
      image.onerror = function () { self.readout.textContent = "PNG export failed: the SVG could not be drawn"; };
      image.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(xml);
    };

    // ----------------------------------------------------------------------------------- namespace

    function init(root) {
      if (root.getAttribute("data-attnlab-ready")) return root.attnlabViewer || null;
      root.setAttribute("data-attnlab-ready", "pending");
      var data = root.querySelector("script.attnlab-viewer-data");
      var viewer = null;
      try {
        var payloads = JSON.parse(data ? data.textContent : "null");
        if (!Array.isArray(payloads) || !payloads.length) throw new Error("no attention maps in this viewer");
        viewer = new Viewer(root, payloads);
        root.attnlabViewer = viewer;
        root.setAttribute("data-attnlab-ready", "true");
      } catch (err) {
        var p = el("p", { "class": "av-error" }, root);
        p.textContent = "The attention viewer could not start: " + (err && err.message ? err.message : err);
        root.setAttribute("data-attnlab-ready", "error");
      }
      return viewer;
    }

    function initAll(scope) {
      var roots = (scope || document).querySelectorAll(".attnlab-viewer[data-attnlab-viewer]");
      for (var i = 0; i < roots.length; i++) init(roots[i]);
    }

    return { version: 1, init: init, initAll: initAll };
  }

  if (!window.attnlabViewer) window.attnlabViewer = makeNamespace();
  var ns = window.attnlabViewer;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { ns.initAll(document); });
  } else {
    ns.initAll(document);
  }
})();
