import { simpleList } from "./simple.js";

export default simpleList({ name: "stock", title: "Stock", permission: "stock.read", path: "/stock",
  columns: [["SKU", "sku"], ["On hand", "on_hand"], ["Available", "available"]] });
