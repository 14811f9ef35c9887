/* Assent telemetry: <script defer src="https://TELEMETRY/v1/script.js" data-site="demo" data-device="ID"></script>
 * Sends a page view on load and on in-page navigation. It sets no cookie and reads none. `data-device` is the
 * Site's device id, which the Site renders only for a visitor who allowed cookies (or passes later with
 * `assent.device(id)` once the banner's choice is recorded). Telemetry sets its visitor cookie only when the
 * consent service says that device allowed `cookies`: what the browser claims decides nothing. Global Privacy
 * Control and Do Not Track always win: the device id is not even sent. */
(function () {
  "use strict";
  var tag = document.currentScript;
  if (!tag || !tag.dataset.site) return;
  var endpoint = new URL("/v1/collect", tag.src).href;
  var optedOut = navigator.globalPrivacyControl === true || navigator.doNotTrack === "1";
  var device = tag.dataset.device || null;
  var last = null;

  function send() {
    if (location.href === last) return;
    var hit = { site_id: tag.dataset.site, url: location.href };
    if (device && !optedOut) hit.device_id = device;
    if (document.referrer && last === null) hit.referrer = document.referrer;
    last = location.href;
    // A string body goes as text/plain: no CORS preflight, and the beacon survives the page closing.
    var body = JSON.stringify(hit);
    if (!(navigator.sendBeacon && navigator.sendBeacon(endpoint, body))) {
      fetch(endpoint, { method: "POST", body: body, keepalive: true, credentials: "include" }).catch(function () {});
    }
  }

  var push = history.pushState;
  history.pushState = function () {
    push.apply(this, arguments);
    send();
  };
  window.addEventListener("popstate", send);
  window.assent = {
    device: function (id) {
      device = typeof id === "string" && id ? id : null;
    },
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", send);
  else send();
})();
