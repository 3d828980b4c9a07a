// Keeps the page in place when the cookie banner is answered: the same form
// is posted in the background and the banner hidden. Without this script the
// form posts normally and the server sends the browser back to this page.
(function () {
  var banner = document.getElementById("cookie-banner");
  if (!banner || !window.fetch || !window.FormData) return;
  var form = banner.querySelector("form");
  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (!button) return;
    event.preventDefault();
    var data = new URLSearchParams(new FormData(form));
    data.set(button.name, button.value);
    fetch(form.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    }).then(function (response) {
      if (response.ok) banner.remove();
      else form.submit();
    }, function () { form.submit(); });
  });
})();
