import { simpleList } from "./simple.js";

export default simpleList({ name: "mappings", title: "Products", permission: "mappings.read",
  path: "/product-mappings", columns: [["SKU", "sku"], ["Name", "name"]] });
