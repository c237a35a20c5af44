/* Live template preview, a progressive enhancement (the page works without it: its Preview
   button asks the server for the same panel). As the message is typed, the body is sent to
   POST /admin/templates/preview, which counts it as it is sent (the opt-out footer when it
   needs one, {link} at the real short-link length), and the panel beside it is filled again.
   No framework, no build step. */
(() => {
  "use strict";
  const DELAY_MS = 250;

  // A character as the page shows it: itself, or its code when it cannot be seen.
  const NAMES = { "\u00a0": "no-break space", "\u2009": "thin space", "\u200b": "zero-width space" };
  const label = (ch) => {
    if (/^[^\s\p{C}]$/u.test(ch)) return ch;
    const code = "U+" + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
    return NAMES[ch] ? `${NAMES[ch]} (${code})` : code;
  };
  const code = (text) => {
    const el = document.createElement("code");
    el.className = "char";
    el.textContent = label(text);
    return el;
  };

  for (const root of document.querySelectorAll("[data-preview-url]")) {
    const source = root.querySelector("[data-preview-source]");
    if (!source || !window.fetch) continue;
    const url = root.getAttribute("data-preview-url");
    const csrf = root.getAttribute("data-csrf") || "";
    const part = (name) => root.querySelector(`[data-p="${name}"]`);
    const show = (name, visible) => { const el = part(name); if (el) el.hidden = !visible; };
    const text = (name, value) => { const el = part(name); if (el) el.textContent = value; };
    let timer = null;
    let asked = 0;
    let answered = 0;
    let suggestions = [];

    const fill = (a) => {
      const capacity = a.per_segment * Math.max(a.segments, 1);
      text("segments", String(a.segments));
      text("segments-label", a.segments === 1 ? "segment" : "segments");
      const badge = part("encoding");
      badge.textContent = a.encoding;
      badge.className = "badge " + (a.encoding === "GSM-7" ? "good" : "warn");
      text("units", String(a.units));
      text("capacity", String(capacity));
      text("unit-name", a.encoding === "GSM-7" ? "characters" : "UTF-16 units");
      text("per-segment", String(a.per_segment));
      part("meter").style.width = `${capacity ? Math.min(100, (100 * a.units) / capacity) : 0}%`;
      text("price", a.price_per_message || "");
      show("price-wrap", Boolean(a.price_per_message));
      text("problem", a.problem || "");
      show("problem", Boolean(a.problem));

      const list = part("unicode-list");
      list.replaceChildren(...a.unicode_characters.flatMap((ch) => [code(ch), " "]));
      show("unicode", a.unicode_characters.length > 0);
      suggestions = a.suggestions;
      part("suggestions").replaceChildren(...a.suggestions.map((s) => {
        const li = document.createElement("li");
        li.append(code(s.character), " → ", code(s.replacement));
        return li;
      }));
      show("suggestions-wrap", a.suggestions.length > 0);
      show("apply", a.suggestions.length > 0);

      text("message", a.message);
      show("footer-yes", Boolean(a.footer));
      show("footer-no", !a.footer);
      text("link-length", String(a.link_length));
      show("link-note", a.placeholders.includes("link"));
      root.setAttribute("data-preview-state", "live");
    };

    const fail = (message) => {
      text("problem", message);
      show("problem", true);
      root.setAttribute("data-preview-state", "error");
    };

    const ask = async () => {
      const mine = ++asked;
      root.setAttribute("data-preview-state", "pending");
      try {
        const response = await fetch(url, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify({ body: source.value.replace(/\r\n/g, "\n") }),
        });
        const answer = await response.json().catch(() => null);
        if (mine < answered) return; // a later answer is already shown
        answered = mine;
        if (response.ok && answer) fill(answer);
        else fail(answer && answer.error ? answer.error.message : `The preview is unavailable (${response.status}).`);
      } catch {
        if (mine >= answered) { answered = mine; fail("The preview is unavailable: no connection."); }
      }
    };

    source.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(ask, DELAY_MS);
    });

    const apply = part("apply");
    if (apply) {
      apply.addEventListener("click", () => {
        let value = source.value;
        for (const s of suggestions) value = value.split(s.character).join(s.replacement);
        source.value = value;
        source.focus();
        ask();
      });
    }
    ask(); // the same answer as the server-rendered panel, and the suggestions to apply
  }
})();
