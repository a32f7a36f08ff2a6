import { simpleList } from "./simple.js";

export default simpleList({ name: "gridflock", title: "GridFlock", permission: "gridflock.read",
  path: "/gridflock/jobs", columns: [["Job", "id"], ["Status", "status"]] });
