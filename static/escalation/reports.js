// The CI report pages' charts: each <canvas data-chart="name"> is drawn with Chart.js (served
// from static/vendor/chartjs) from the page's JSON ({{ charts|json_script:"report-charts" }}).
// No inline script; the tables next to the charts carry the same figures without JavaScript.
(function () {
  "use strict";

  function draw(canvas, spec) {
    var horizontal = Boolean(spec.horizontal);
    var valueAxis = { beginAtZero: true, ticks: { precision: 0 } };
    var chart = new window.Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: spec.datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        indexAxis: horizontal ? "y" : "x",
        plugins: { legend: { display: spec.datasets.length > 1 } },
        scales: horizontal ? { x: valueAxis } : { y: valueAxis },
      },
    });
    canvas.dataset.drawn = "true";
    return chart;
  }

  function drawAll() {
    var source = document.getElementById("report-charts");
    if (!source || typeof window.Chart === "undefined") {
      return;
    }
    var specs = JSON.parse(source.textContent);
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var spec = specs[canvas.dataset.chart];
      if (spec) {
        draw(canvas, spec);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
