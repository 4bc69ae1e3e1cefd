// The chat's behaviour in the page, loaded once in its head (see qa/ui/__init__.py).

// Clicks on "Open in document" inside chat messages and on the page buttons of a PDF in the
// side panel: remember which source (and page), then press the hidden button whose event
// reads it (window.qa.openDocArgs).
document.addEventListener("click", (event) => {
  const button = event.target.closest
    && event.target.closest("button.qa-open, button.qa-page-turn");
  if (!button) return;
  event.preventDefault();
  event.stopPropagation();
  window.qaDocRequest = JSON.parse(button.value);
  document.getElementById("qa-open-doc")?.click();
}, true);

window.qa = {
  // The inputs of the open-document event: the clicked button's [source, start, end,
  // span start, span end, page] (no page: the cited one), or the hidden fields' values when
  // called otherwise.
  openDocArgs: (source, start, end, spanStart, spanEnd, page) => window.qaDocRequest
    ? [0, 1, 2, 3, 4, 5].map((i) => window.qaDocRequest[i] ?? null)
    : [source, start, end, spanStart, spanEnd, page],
  // Bring the cited sentence into view once the side panel has rendered (twice: the panel
  // animates open).
  scrollToMark: () => {
    const go = () => document.getElementById("qa-doc-mark")
      ?.scrollIntoView({block: "center", behavior: "instant"});
    requestAnimationFrame(go);
    setTimeout(go, 350);
  },
  toggleTheme: () => { document.body.classList.toggle("dark"); },
};
