// The review page: Ctrl+S (or Cmd+S) in the HTML editor saves and converts, and leaving the page
// with unsaved edits asks first. The page works the same without it.
(function () {
  "use strict";
  var form = document.querySelector("[data-review-form]");
  if (!form) return;
  var editor = form.querySelector("textarea");
  var saved = editor ? editor.value : "";
  var submitting = false;
  form.addEventListener("submit", function () { submitting = true; });
  if (editor) {
    editor.addEventListener("keydown", function (event) {
      if ((event.ctrlKey || event.metaKey) && event.key === "s") {
        event.preventDefault();
        submitting = true;
        form.requestSubmit ? form.requestSubmit() : form.submit();
      }
    });
  }
  window.addEventListener("beforeunload", function (event) {
    if (!submitting && editor && editor.value !== saved) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();
