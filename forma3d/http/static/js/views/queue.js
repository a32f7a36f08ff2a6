import { simpleList } from "./simple.js";

export default simpleList({ name: "queue", title: "Queue", permission: "print_jobs.read", path: "/print-jobs",
  columns: [["Job", "job_key"], ["Status", "status"], ["Updated", "updated_at"]] });
