// The dashboard's views, in navigation order: one module each.
import overview from "./overview.js";
import floor from "./floor.js";
import queue from "./queue.js";
import orders from "./orders.js";
import mappings from "./mappings.js";
import gridflock from "./gridflock.js";
import stock from "./stock.js";
import settings from "./settings.js";

export const VIEWS = [overview, floor, queue, orders, mappings, gridflock, stock, settings];
