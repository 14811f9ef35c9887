/* Assent telemetry: <script defer src="https://TELEMETRY/v1/script.js" data-site="demo"></script>
 * Sends a page view on load and on in-page navigation. It sets no cookie and reads none: it asks for the
 * visitor-id cookie only when the site says the visitor consented to analytics cookies, either with its own
 * first-party cookie `assent_analytics=granted` or by calling `assent.consent(true)`. Global Privacy
 * Control and Do Not Track always win. */
(function () {
  "use strict";
  var tag = document.currentScript;
  if (!tag || !tag.dataset.site) return;
  var endpoint = new URL("/v1/collect", tag.src).href;
  var optedOut = navigator.globalPrivacyControl === true || navigator.doNotTrack === "1";
  var granted = /(?:^|;\s*)assent_analytics=granted(?:;|$)/.test(document.cookie);
  var last = null;

  function send() {
    if (location.href === last) return;
    var hit = { site_id: tag.dataset.site, url: location.href, consent: granted && !optedOut };
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
    consent: function (yes) {
      granted = yes === true;
    },
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", send);
  else send();
})();
