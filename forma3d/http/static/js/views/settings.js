import { simpleList } from "./simple.js";

export default simpleList({ name: "settings", title: "Settings", permission: "tenant.read", path: "/integrations",
  columns: [["Service", "service"], ["Status", "status"]] });
