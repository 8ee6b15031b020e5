// A tiny element builder: el("div", {class: "x", onclick}, [children]). Text is always set as text, never as HTML.
/**
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {any} [children] a node, a string, or an array of them
 * @returns {any} the element (any: pages set input-specific properties freely)
 */
export function el(tag, attrs = {}, children = []) {
  /** @type {any} */
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "value") node.value = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of [children].flat())
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  return node;
}

export const pct = (v) => (typeof v === "number" ? `${(100 * v).toFixed(1)}%` : "–");
export const num = (v, digits = 4) => (typeof v === "number" ? v.toFixed(digits) : "–");
