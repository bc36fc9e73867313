/* mi-bridge dashboard: live regions, confirmations and busy buttons. The pages work without it.
 *
 * Live updates: <main data-live-src="URL" data-live-interval="2000"> makes the page fetch URL every
 * interval. The answer holds elements with an id and `data-region`; each replaces the content of
 * the element with the same id here, only when it changed, keeping keyboard focus where it was.
 * Fetching pauses while the tab is hidden, backs off after errors, and stops on `X-Live: off` or 401.
 */
(function () {
  "use strict";

  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)");

  function setStatus(text) {
    var status = document.querySelector("[data-live-status]");
    if (status && status.textContent !== text) {
      status.textContent = text;
    }
  }

  function startLive(main) {
    var src = main.getAttribute("data-live-src");
    var baseInterval = parseInt(main.getAttribute("data-live-interval"), 10) || 2000;
    var interval = baseInterval;
    var timer = null;
    var inFlight = false;
    var stopped = false;
    var seen = {};

    document.querySelectorAll("[data-region][id]").forEach(function (region) {
      seen[region.id] = region.innerHTML;
    });

    function schedule() {
      if (!stopped && !document.hidden && timer === null) {
        timer = window.setTimeout(tick, interval);
      }
    }

    function stop(text) {
      stopped = true;
      if (timer !== null) {
        window.clearTimeout(timer);
        timer = null;
      }
      setStatus(text);
    }

    function swap(fresh) {
      var current = document.getElementById(fresh.id);
      if (!current || seen[fresh.id] === fresh.innerHTML) {
        return;
      }
      seen[fresh.id] = fresh.innerHTML;
      var focused = document.activeElement;
      var focusId = focused && focused.id && current.contains(focused) ? focused.id : null;
      // The fragment comes from this origin and is escaped by the server's templates.
      current.innerHTML = fresh.innerHTML;
      if (focusId) {
        var again = document.getElementById(focusId);
        if (again) {
          again.focus({ preventScroll: true });
        }
      }
      if (!(reduceMotion && reduceMotion.matches)) {
        current.classList.remove("region--changed");
        void current.offsetWidth; // restart the highlight animation
        current.classList.add("region--changed");
      }
    }

    function apply(html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      doc.querySelectorAll("[data-region][id]").forEach(swap);
    }

    function tick() {
      timer = null;
      if (stopped || document.hidden || inFlight) {
        return;
      }
      inFlight = true;
      fetch(src, { credentials: "same-origin", headers: { Accept: "text/html" }, cache: "no-store" })
        .then(function (response) {
          if (response.status === 401) {
            stop("Signed out: reload the page to sign in again.");
            return null;
          }
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          var live = response.headers.get("X-Live");
          return response.text().then(function (html) {
            apply(html);
            interval = baseInterval;
            if (live === "off") {
              stop("Up to date: nothing more will change here.");
            } else {
              setStatus("Updates automatically.");
            }
          });
        })
        .catch(function () {
          interval = Math.min(interval * 2, 30000);
          setStatus("Cannot reach the bridge; trying again in " + Math.round(interval / 1000) + " s.");
        })
        .then(function () {
          inFlight = false;
          schedule();
        });
    }

    document.addEventListener("visibilitychange", function () {
      if (stopped) {
        return;
      }
      if (document.hidden) {
        if (timer !== null) {
          window.clearTimeout(timer);
          timer = null;
        }
        setStatus("Paused while this tab is hidden.");
      } else {
        setStatus("Updates automatically.");
        tick();
      }
    });
    schedule();
  }

  // Confirmation for forms that say so, and a busy state for slow ones (the test waits for answers).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.getAttribute("aria-busy") === "true") {
      event.preventDefault(); // already sent: wait for its answer
      return;
    }
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    var busy = form.getAttribute("data-busy-label");
    var button = form.querySelector("button[type=submit]");
    if (busy && button) {
      form.setAttribute("aria-busy", "true");
      button.setAttribute("aria-disabled", "true");
      button.textContent = busy;
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var main = document.querySelector("main[data-live-src]");
    if (main && window.fetch && window.DOMParser) {
      startLive(main);
    }
    var summary = document.getElementById("error-summary");
    if (summary) {
      summary.focus();
    }
  });
})();
