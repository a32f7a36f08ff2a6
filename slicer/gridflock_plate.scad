// GridFlock plate: ONE Gridfinity baseplate piece of a plate set, set up entirely by -D.
//
// Written for Forma3D from the published Gridfinity figures (42 mm pitch; socket profile from
// the bottom up 0.7 mm at 45 deg, 1.8 mm vertical, 2.15 mm at 45 deg = 4.65 mm tall, 2.85 mm
// deep; outer corner radius 4 mm; magnet holes 6.5 x 2.4 mm by default, 8 mm from the cell sides).
// Targets OpenSCAD 2021.01 (CGAL): sockets are single loft polyhedra, not hulls or minkowski,
// and the plate number is seven-segment geometry, so no font is needed and renders stay fast.
//
// Plate coordinates: origin at the south-west corner of the body, +X east, +Y north, +Z up.
// Half cells sit at the east / north end. Male tabs stick out of north/east edges; female
// sockets are cut into south/west edges. forma3d/gridflock/stl.py builds the -D arguments.

cells_x = 2;        // cells along X, halves allowed (e.g. 3.5)
cells_y = 2;        // cells along Y, halves allowed
pad_n = 0;          // solid padding per side, mm
pad_e = 0;
pad_s = 0;
pad_w = 0;
floor_mm = 1.2;     // solid floor under the sockets
magnets = false;    // magnet holes in every whole cell
magnet_d = 6.5;     // magnet hole diameter, mm
magnet_depth = 2.4; // magnet hole depth, mm (the floor must be thicker)
round_sw = false;   // rounded outer corners (only the set's outer corners are)
round_se = false;
round_ne = false;
round_nw = false;
conn_n = [];        // tab centres along each edge, mm from the edge's west/south end
conn_e = [];        //   north/east: male tabs; south/west: female sockets
conn_s = [];
conn_w = [];
plate_number = 1;   // debossed into the bottom, readable from below
arc_steps = 6;      // segments per 90 deg of corner arc

// --- fixed figures -------------------------------------------------------------------------
pitch = 42;
corner_r = 4;
profile_h = 4.65;
// [height above the socket floor, inset from the cell edge], bottom to top. The top is flush with
// the body: CGAL subtracts coplanar faces exactly, and that measured faster than overshooting.
profile = [[0, 2.85], [0.7, 2.15], [2.5, 2.15], [4.65, 0]];
magnet_inset = 8;
tab_depth = 1.8;     // how far a male tab sticks out (inside the neighbour's 2.15 mm wall)
tab_neck = 6;        // tab width at the edge
tab_head = 9;        // tab width at its tip: the dovetail that locks
tab_top = 2.3;       // tab height above the socket floor
clearance = 0.15;    // added around female sockets, sideways and on top
emboss = 0.5;
digit_h = 8;
digit_w = 4.5;
digit_stroke = 1.1;

width = cells_x * pitch + pad_w + pad_e;
depth = cells_y * pitch + pad_s + pad_n;
height = floor_mm + profile_h;
whole_x = floor(cells_x);
whole_y = floor(cells_y);

// Rounded-rectangle outline, counter-clockwise. With all corners rounded it has the same number
// of points for every radius, so outlines at different heights join into one polyhedron.
function arc(cx, cy, r, a0) = [for (i = [0:arc_steps]) let(a = a0 + 90 * i / arc_steps)
    [cx + r * cos(a), cy + r * sin(a)]];
function corner(cx, cy, r, a0, rounded) = rounded ? arc(cx, cy, r, a0)
    : [[cx + r * sqrt(2) * cos(a0 + 45), cy + r * sqrt(2) * sin(a0 + 45)]];
function outline(x0, y0, x1, y1, r, rounds = [true, true, true, true]) = concat(
    corner(x1 - r, y0 + r, r, -90, rounds[1]),
    corner(x1 - r, y1 - r, r, 0, rounds[2]),
    corner(x0 + r, y1 - r, r, 90, rounds[3]),
    corner(x0 + r, y0 + r, r, 180, rounds[0]));

// A solid joining outlines stacked in Z: levels = [[z, points], ...], bottom first.
module loft(levels) {
    n = len(levels[0][1]);
    m = len(levels);
    points = [for (l = levels) for (p = l[1]) [p[0], p[1], l[0]]];
    // Triangles, not quads: CGAL rejects faces that are planar only up to rounding.
    sides = [for (i = [0:m - 2]) for (j = [0:n - 1]) let(
        a = i * n + j, b = (i + 1) * n + j, c = (i + 1) * n + (j + 1) % n, d = i * n + (j + 1) % n)
        each [[a, b, c], [a, c, d]]];
    bottom = [[for (j = [0:n - 1]) j]];
    top = [[for (j = [n - 1:-1:0]) (m - 1) * n + j]];
    polyhedron(points = points, faces = concat(bottom, sides, top), convexity = 2);
}

// One cell's cut, built at the origin so identical cells share a cached CGAL result.
module cell_cut(sx, sy) {
    loft([for (l = profile) [floor_mm + l[0],
        outline(l[1], l[1], sx - l[1], sy - l[1], corner_r - l[1])]]);
    if (magnets && sx == pitch && sy == pitch)
        for (dx = [magnet_inset, pitch - magnet_inset], dy = [magnet_inset, pitch - magnet_inset])
            translate([dx, dy, floor_mm - magnet_depth])
                cylinder(d = magnet_d, h = magnet_depth + 1, $fn = 24);
}

module body() {
    rounds = [round_sw, round_se, round_ne, round_nw];
    linear_extrude(height = height)
        polygon(outline(0, 0, width, depth, corner_r, rounds));
}

function cell_size(i, whole) = i < whole ? pitch : pitch / 2;

// Everything cut from the body, as [kind, a, b, c, d]: kind 0 = cell [x, y, size x, size y],
// 1 = female socket on the south edge at x = a, 2 = female socket on the west edge at y = a,
// 3 = the plate number.
cut_items = concat(
    [for (i = [0:ceil(cells_x) - 1], j = [0:ceil(cells_y) - 1])
        [0, pad_w + i * pitch, pad_s + j * pitch, cell_size(i, whole_x), cell_size(j, whole_y)]],
    [for (u = conn_s) [1, u, 0, 0, 0]],
    [for (u = conn_w) [2, u, 0, 0, 0]],
    [[3, 0, 0, 0, 0]]);

module cut_item(c) {
    if (c[0] == 0) translate([c[1], c[2], 0]) cell_cut(c[3], c[4]);
    if (c[0] == 1) female_socket(2, c[1]);
    if (c[0] == 2) female_socket(3, c[1]);
    if (c[0] == 3) plate_number_cut();
}

// Union the cuts as a balanced tree and subtract once: CGAL's cost grows with the accumulated
// solid, so pairing halves is far cheaper than subtracting cuts one by one from the plate
// (measured on 2021.01: a 5.5 x 5 magnet plate with ten female sockets went from 68 s to 13 s).
module cuts(lo, hi) {
    if (hi - lo == 1) {
        cut_item(cut_items[lo]);
    } else {
        mid = floor((lo + hi) / 2);
        union() {
            cuts(lo, mid);
            cuts(mid, hi);
        }
    }
}

// Dovetail in edge coordinates: u along the edge, v outwards; `grow` widens it for clearance.
module dovetail(grow, reach) {
    polygon([[-tab_neck / 2 - grow, -reach], [tab_neck / 2 + grow, -reach],
             [tab_neck / 2 + grow, 0], [tab_head / 2 + grow, tab_depth + grow],
             [-tab_head / 2 - grow, tab_depth + grow], [-tab_neck / 2 - grow, 0]]);
}

// Place edge-local 2D geometry on one edge: 0 = north, 1 = east, 2 = south, 3 = west.
// Male edges (N, E) point outwards; on female edges (S, W) the shape points inwards.
module on_edge(side, u) {
    if (side == 0) translate([u, depth]) children();
    if (side == 1) translate([width, u]) rotate(-90) children();
    if (side == 2) translate([u, 0]) children();
    if (side == 3) translate([0, u]) rotate(-90) children();
}

module male_tabs() {
    for (u = conn_n) on_edge(0, u) linear_extrude(height = floor_mm + tab_top) dovetail(0, 0.5);
    for (u = conn_e) on_edge(1, u) linear_extrude(height = floor_mm + tab_top) dovetail(0, 0.5);
}

module female_socket(side, u) {
    on_edge(side, u) translate([0, 0, -1])
        linear_extrude(height = floor_mm + tab_top + clearance + 1) dovetail(clearance, 1);
}

// Seven-segment digits: segments a..g as [x, y, w, h] on a digit_w x digit_h box.
function segments() = let(t = digit_stroke, w = digit_w, h = digit_h, m = (h - t) / 2) [
    [0, h - t, w, t], [w - t, m, t, h - m], [w - t, 0, t, m + t], [0, 0, w, t],
    [0, 0, t, m + t], [0, m, t, h - m], [0, m, w, t]];
digit_segments = [[0, 1, 2, 3, 4, 5], [1, 2], [0, 1, 3, 4, 6], [0, 1, 2, 3, 6], [1, 2, 5, 6],
    [0, 2, 3, 5, 6], [0, 2, 3, 4, 5, 6], [0, 1, 2], [0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 5, 6]];

module number_2d(n) {
    s = str(n);
    gap = digit_w * 0.45;
    total = len(s) * digit_w + (len(s) - 1) * gap;
    translate([-total / 2, -digit_h / 2])
        for (k = [0:len(s) - 1]) translate([k * (digit_w + gap), 0])
            for (seg = digit_segments[ord(s[k]) - 48]) let(r = segments()[seg])
                translate([r[0], r[1]]) square([r[2], r[3]]);
}

module plate_number_cut() {
    // Under the first (south-west, always whole) cell, mirrored to read from below.
    translate([pad_w + pitch / 2, pad_s + pitch / 2, -1])
        linear_extrude(height = emboss + 1) mirror([1, 0]) number_2d(plate_number);
}

difference() {
    union() {
        body();
        male_tabs();
    }
    cuts(0, len(cut_items));
}
