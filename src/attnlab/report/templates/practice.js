/* attnlab practice page: flashcards that turn over, and the pronoun exercise.
 *
 * Flashcards: each `.fc-card` holds a `.fc-question` button and a `.fc-answer` (hidden until the question is
 * clicked; a second click hides it again).
 *
 * Pronoun exercise: the data is JSON in `#practice-data` ({pronoun: {model, layers, heads, chosen, sentences}});
 * each sentence has its words, the index of "it", of the two candidate nouns and of the referent, and for every
 * word the weight from "it" in every head (`weights[word][l * heads + h]`), the weight on [CLS] and [SEP]
 * (`special`), and which candidate each head weights more (`pick`, -1 for a tie). The first click on a word
 * records the learner's choice (`data-choice` on the sentence) and reveals the heads: which agree with the
 * answer, which with the choice, and the weights of one head (or of their mean) over the words.
 *
 * Text reaches the page only through textContent; nothing is fetched.
 */
(function () {
  "use strict";

  function el(tag, cls, parent, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function quote(word) {
    return "\u201c" + word + "\u201d";
  }

  // -------------------------------------------------------------------------------------------- flashcards

  function initCards() {
    var cards = Array.prototype.slice.call(document.querySelectorAll(".fc-card"));
    var count = document.getElementById("fc-count");

    function setCard(card, open) {
      card.querySelector(".fc-answer").hidden = !open;
      card.querySelector(".fc-question").setAttribute("aria-expanded", open ? "true" : "false");
      card.classList.toggle("fc-flipped", open);
    }

    function update() {
      var turned = cards.filter(function (c) { return c.classList.contains("fc-flipped"); }).length;
      count.textContent = turned + " of " + cards.length + " cards turned";
    }

    cards.forEach(function (card) {
      card.querySelector(".fc-question").addEventListener("click", function () {
        setCard(card, !card.classList.contains("fc-flipped"));
        update();
      });
    });
    document.getElementById("fc-show-all").addEventListener("click", function () {
      cards.forEach(function (c) { setCard(c, true); });
      update();
    });
    document.getElementById("fc-hide-all").addEventListener("click", function () {
      cards.forEach(function (c) { setCard(c, false); });
      update();
    });
    update();
  }

  // ------------------------------------------------------------------------------------- pronoun exercise

  function initPronoun(data) {
    var H = data.heads;
    var N = data.layers * data.heads;
    var chosen = data.chosen; // the report's head, or null
    var score = document.getElementById("px-score");
    var answered = []; // sentence indices, in the order answered

    function headName(k) {
      return "L" + (Math.floor(k / H) + 1) + "H" + ((k % H) + 1);
    }

    function otherCandidate(s) {
      return s.candidates[0] === s.referent ? s.candidates[1] : s.candidates[0];
    }

    // head k agrees with word w: w gets more weight from "it" than every competing candidate noun
    function agrees(s, k, w) {
      if (s.candidates.indexOf(w) >= 0) return s.pick[k] === w;
      return s.candidates.every(function (c) { return s.weights[w][k] > s.weights[c][k]; });
    }

    function countAgree(s, w) {
      var n = 0;
      for (var k = 0; k < N; k++) if (agrees(s, k, w)) n++;
      return n;
    }

    function meanWeights(s) {
      return s.weights.map(function (row) {
        return row.reduce(function (a, b) { return a + b; }, 0) / N;
      });
    }

    function drawStrip(strip, s, k) {
      strip.textContent = "";
      var ws = k === null ? meanWeights(s) : s.weights.map(function (row) { return row[k]; });
      var special = k === null ? s.special.reduce(function (a, b) { return a + b; }, 0) / N : s.special[k];
      var top = Math.max.apply(null, ws.filter(function (_, i) { return i !== s.it; }).concat([1e-9]));
      el("span", "px-strip-title", strip, (k === null ? "Mean of all " + N + " heads" : "Head " + headName(k)) +
        ": weight from \u201cit\u201d on each word");
      var row = el("span", "px-strip-row", strip);
      s.words.forEach(function (word, i) {
        var cell = el("span", "px-cell", row);
        var tok = el("span", "px-tok", cell, word);
        var alpha = i === s.it ? 0 : Math.min(1, ws[i] / top);
        tok.style.backgroundColor = "rgba(31, 95, 191, " + alpha.toFixed(3) + ")";
        if (alpha > 0.55) tok.classList.add("px-dark");
        if (i === s.it) tok.classList.add("px-tok-it");
        if (i === s.referent) tok.classList.add("px-tok-ref");
        el("span", "px-num", cell, ws[i].toFixed(2));
      });
      el("span", "px-strip-note", strip, "[CLS] and [SEP] take " + special.toFixed(2) +
        "; \u201cit\u201d on itself " + ws[s.it].toFixed(2) + ".");
      strip.setAttribute("data-head", k === null ? "mean" : String(k));
    }

    function reveal(root, s, w) {
      var box = root.querySelector(".px-reveal");
      box.textContent = "";
      var ref = s.words[s.referent];
      var other = s.words[otherCandidate(s)];
      var right = w === s.referent;
      var fb = el("p", "px-feedback " + (right ? "px-right" : "px-wrong"), box);
      fb.textContent = right ?
        "Right: \u201cit\u201d is the " + ref + "." :
        "You chose " + quote(s.words[w]) + "; here \u201cit\u201d is the " + ref + " (the other noun is the " +
        other + ").";
      var nAnswer = countAgree(s, s.referent);
      var nChoice = countAgree(s, w);
      el("p", "px-tally", box, nAnswer + " of " + N + " heads give " + quote(ref) + " more weight from \u201cit\u201d" +
        " than " + quote(other) + ": they agree with the answer" + (right ? " and with you." : "."));
      if (!right) {
        var competitors = s.candidates.filter(function (c) { return c !== w; }).map(function (c) {
          return quote(s.words[c]);
        }).join(" and ");
        el("p", "px-tally", box, nChoice + " of " + N + " heads agree with your choice (" + quote(s.words[w]) +
          " above " + competitors + ").");
      }
      if (chosen) {
        var k0 = chosen.index;
        el("p", "px-tally", box, "The report's head " + chosen.label + " " +
          (agrees(s, k0, s.referent) ? "agrees with the answer" : "does not agree with the answer") +
          (right ? "." : (agrees(s, k0, w) ? ", and agrees with you." : ", nor with you.")));
      }
      box.setAttribute("data-agree-answer", String(nAnswer));
      box.setAttribute("data-agree-choice", String(nChoice));

      var strip = el("p", "px-strip", null);
      var grid = el("table", "px-grid", box);
      el("caption", "px-caption", grid, "Heads by layer (L) and head (H). Blue: agrees with the answer; " +
        "orange: does not; \u25cf: agrees with you. Click a head to see its weights.");
      var head = el("tr", null, el("thead", null, grid));
      el("th", null, head, "");
      for (var h = 0; h < H; h++) el("th", null, head, "H" + (h + 1));
      var body = el("tbody", null, grid);
      var buttons = [];
      for (var l = 0; l < data.layers; l++) {
        var tr = el("tr", null, body);
        el("th", null, tr, "L" + (l + 1));
        for (h = 0; h < H; h++) {
          var k = l * H + h;
          var td = el("td", null, tr);
          var cls = "px-head " + (agrees(s, k, s.referent) ? "px-yes" : s.pick[k] === -1 ? "px-tie" : "px-no");
          if (agrees(s, k, w)) cls += " px-you";
          if (chosen && chosen.index === k) cls += " px-report";
          var b = el("button", cls, td, agrees(s, k, w) ? "\u25cf" : "");
          b.type = "button";
          b.setAttribute("data-head", String(k));
          b.setAttribute("aria-pressed", "false");
          b.title = headName(k) + ": " + ref + " " + s.weights[s.referent][k].toFixed(3) + ", " + other + " " +
            s.weights[otherCandidate(s)][k].toFixed(3) +
            (s.candidates.indexOf(w) < 0 ? ", " + s.words[w] + " " + s.weights[w][k].toFixed(3) : "");
          b.setAttribute("aria-label", b.title);
          buttons.push(b);
        }
      }
      var mean = el("button", "px-mean", null, "Mean of all heads");
      mean.type = "button";
      mean.setAttribute("aria-pressed", "true");

      function select(k) {
        buttons.forEach(function (b, i) { b.setAttribute("aria-pressed", i === k ? "true" : "false"); });
        mean.setAttribute("aria-pressed", k === null ? "true" : "false");
        drawStrip(strip, s, k);
      }
      buttons.forEach(function (b, i) { b.addEventListener("click", function () { select(i); }); });
      mean.addEventListener("click", function () { select(null); });
      var controls = el("p", "px-controls", box);
      controls.appendChild(mean);
      box.appendChild(strip);
      select(chosen ? chosen.index : null);
      box.hidden = false;
    }

    function updateScore() {
      var right = answered.filter(function (i) {
        var s = data.sentences[i];
        return Number(document.getElementById("sentence-" + i).getAttribute("data-choice")) === s.referent;
      }).length;
      var total = data.sentences.length;
      var text = "Your answers: " + right + " of " + answered.length + " right (" + total + " sentences).";
      if (chosen) {
        var byReport = answered.filter(function (i) {
          var s = data.sentences[i];
          return s.pick[chosen.index] === s.referent;
        }).length;
        text += " The report's head " + chosen.label + ": " + byReport + " of " + answered.length + ".";
      }
      if (answered.length === total) {
        var best = 0, bestN = -1;
        for (var k = 0; k < N; k++) {
          var n = data.sentences.filter(function (s) { return s.pick[k] === s.referent; }).length;
          if (n > bestN) { best = k; bestN = n; }
        }
        text += " The best head on these " + total + " sentences is " + headName(best) + " with " + bestN +
          " of " + total + ", picked after seeing the answers, so it flatters; the report picks its head on " +
          "some pairs and tests it on others.";
      }
      score.textContent = text;
      score.setAttribute("data-right", String(right));
      score.setAttribute("data-answered", String(answered.length));
    }

    Array.prototype.forEach.call(document.querySelectorAll(".px-sentence"), function (root) {
      var i = Number(root.getAttribute("data-index"));
      var s = data.sentences[i];
      var words = Array.prototype.slice.call(root.querySelectorAll("button.px-word"));
      words.forEach(function (button) {
        button.addEventListener("click", function () {
          if (root.hasAttribute("data-choice")) return; // the first click is the answer
          var w = Number(button.getAttribute("data-word"));
          root.setAttribute("data-choice", String(w));
          root.setAttribute("data-correct", w === s.referent ? "true" : "false");
          words.forEach(function (b) {
            var j = Number(b.getAttribute("data-word"));
            b.disabled = true;
            b.setAttribute("aria-pressed", j === w ? "true" : "false");
            if (j === w) b.classList.add(j === s.referent ? "px-chosen-right" : "px-chosen-wrong");
            if (j === s.referent) b.classList.add("px-referent");
          });
          answered.push(i);
          reveal(root, s, w);
          updateScore();
        });
      });
    });
  }

  function init() {
    initCards();
    var data = JSON.parse(document.getElementById("practice-data").textContent);
    initPronoun(data.pronoun);
    document.body.setAttribute("data-practice-ready", "true");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
