// The console's one script: draws every chart from its numbers table with uPlot, again after
// htmx swaps a live part of the page and after the window is resized. Pages work without it
// (the tables stay).
(function () {
  "use strict";
  var COLOURS = ["#0b62a4", "#2f9e44", "#e67700", "#7048e8", "#0c8599", "#5c940d"];
  var LIMIT = "#c92a2a";

  function readTable(table) {
    var kinds = [];
    var labels = [];
    table.querySelectorAll("thead th[data-kind]").forEach(function (th) {
      kinds.push(th.dataset.kind);
      labels.push(th.textContent.trim());
    });
    var data = [[]];
    kinds.forEach(function () { data.push([]); });
    table.querySelectorAll("tbody tr").forEach(function (row) {
      var x = row.querySelector("[data-x]");
      if (!x) { return; }
      data[0].push(Number(x.dataset.x));
      row.querySelectorAll("td[data-y]").forEach(function (td, i) {
        data[i + 1].push(td.dataset.y === "" ? null : Number(td.dataset.y));
      });
    });
    return { kinds: kinds, labels: labels, data: data };
  }

  function seriesOptions(kind, label, index) {
    var colour = kind === "limit" ? LIMIT : COLOURS[index % COLOURS.length];
    var options = { label: label, stroke: colour, width: 2 };
    if (kind !== "line") { options.paths = uPlot.paths.stepped({ align: 1 }); }
    if (kind === "limit") { options.dash = [6, 4]; }
    if (kind === "area") { options.fill = colour + "33"; }
    return options;
  }

  // Slot times as the tables print them: 24-hour UTC.
  function utcTimes(u, splits) {
    var hhmm = uPlot.fmtDate("{HH}:{mm}");
    return splits.map(function (ts) {
      return hhmm(uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"));
    });
  }

  function draw(plot) {
    var table = document.getElementById(plot.dataset.table);
    if (!table || typeof uPlot === "undefined") { return; }
    var read = readTable(table);
    if (read.data[0].length === 0) { return; }
    var series = [{ label: "UTC" }];
    read.kinds.forEach(function (kind, i) {
      series.push(seriesOptions(kind, read.labels[i], i));
    });
    plot.textContent = "";
    var width = Math.max(plot.clientWidth, 280);
    new uPlot({
      width: width,
      height: 220,
      series: series,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      axes: [{ values: utcTimes }, { label: plot.dataset.unit, size: 60 }],
      legend: { live: false },
    }, read.data, plot);
  }

  function drawAll(root) {
    (root || document).querySelectorAll(".chart-plot").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawAll(event.target); });
  // A chart takes its box's width when drawn: draw again once a resize has settled.
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () { drawAll(document); }, 200);
  });
})();
