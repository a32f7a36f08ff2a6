// A plain list of one endpoint: what a view shows until it has its own layout.
import { html, pill, table, when } from "../ui.js";

export function simpleList({ name, title, permission, path, columns, follows = () => true }) {
  return {
    name, title, permission,
    async render(el, ctx) {
      const load = async () => {
        const page = await ctx.api.list(path, { limit: 100 });
        el.innerHTML = html`<h1>${title}</h1>${table(columns.map(([label, key]) => ({
          label, cell: row => key === "status" || key === "state" ? pill(row[key])
            : key.endsWith("_at") ? when(row[key]) : row[key] })), page.data || page)}`;
      };
      await load();
      ctx.follow(follows, load);
    },
  };
}
