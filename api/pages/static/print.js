// The record of service's 打印 button (a script file: the page's policy allows no inline script).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const b = document.getElementById("print");
  if (b) b.addEventListener("click", () => window.print());
});
