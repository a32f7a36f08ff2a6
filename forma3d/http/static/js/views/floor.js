import { simpleList } from "./simple.js";

export default simpleList({ name: "floor", title: "Floor", permission: "printers.read", path: "/printers",
  columns: [["Printer", "name"], ["Model", "model"], ["State", "state"]] });
