// The console works without this script; it adds confirmations before
// grave actions and live progress on a campaign's page.
"use strict";

document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
});

const progress = document.getElementById("progress");
if (progress) {
  const running = (status) => status === "queued" || status === "sending" || status === "paused";
  const show = (campaign) => {
    progress.querySelectorAll("[data-field]").forEach((el) => {
      const field = el.dataset.field;
      if (field === "bar") {
        el.max = campaign.recipients;
        el.value = campaign.sent + campaign.failed + campaign.cancelled;
      } else if (field.endsWith("_at") && typeof campaign[field] === "number") {
        el.textContent = new Date(campaign[field]).toISOString().replace("T", " ").slice(0, 16) + " UTC";
      } else if (field in campaign) {
        el.textContent = String(campaign[field]);
      }
    });
  };
  const poll = async () => {
    try {
      const response = await fetch(progress.dataset.progressUrl, { headers: { accept: "application/json" } });
      if (response.ok) {
        const campaign = await response.json();
        show(campaign);
        if (!running(campaign.status)) return;
      }
    } catch (_) { /* offline for a moment: try again */ }
    setTimeout(poll, 1000);
  };
  if (running(progress.dataset.status)) setTimeout(poll, 1000);
}
