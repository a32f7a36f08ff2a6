"""GridFlock tools: OpenSCAD and the slicers run as subprocesses, their results kept by content
hash (`stl`, `slicing`, `cache`, `artifacts`), and the SVG preview. The pure rules are in
`forma3d.domain.gridflock`.
"""
