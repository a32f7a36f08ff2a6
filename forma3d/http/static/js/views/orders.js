import { simpleList } from "./simple.js";

export default simpleList({ name: "orders", title: "Orders", permission: "orders.read", path: "/orders",
  columns: [["Order", "name"], ["Status", "status"], ["Created", "created_at"]] });
