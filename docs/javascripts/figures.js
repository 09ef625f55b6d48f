// Draws the lessons' plotly figures: each div.gfe-plotly has its figure's JSON (data, layout,
// frames) in the <script type="application/json"> beside it (written by docs/hooks/lessons.py).
// plotly.js is loaded before this file; a figure that fails to draw shows why in its place.
document.addEventListener("DOMContentLoaded", () => {
  for (const script of document.querySelectorAll("script[data-figure-for]")) {
    const div = document.getElementById(script.dataset.figureFor);
    try {
      const figure = JSON.parse(script.textContent);
      Plotly.newPlot(div, {
        data: figure.data,
        layout: figure.layout || {},
        frames: figure.frames || [],
        config: {responsive: true, displaylogo: false},
      });
    } catch (error) {
      div.textContent = "This figure could not be drawn: " + error;
      throw error;
    }
  }
});
