// A filter form with a bad value (a day that is not on the calendar, a range that
// runs backwards) is answered 422 with the page, its form and the problem
// (server/form_query.py, header X-Form-Problems). htmx swaps no 4xx answer by
// default: this one it swaps like a good answer, so the timeline's in-place
// filters say what is wrong where the list was.
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (e) {
    var xhr = e.detail.xhr;
    if (xhr.status === 422 && xhr.getResponseHeader("X-Form-Problems")) {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
  });
})();
