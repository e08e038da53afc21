"""A trusted reference: the same rasterization done by OpenGL (moderngl, EGL standalone context).

On a machine without a GPU, Mesa's llvmpipe runs it on the CPU. Tests compare `rasterize` with it pixel by
pixel and `tools/bench_render.py` times it; a test fixture, not part of the library. Input and output follow
rasterize.py: screen vertices [B,N,3] (homogeneous pixel coordinates, or (x_px, y_px, depth) with
perspective=False), triangles [F,3]; output triangle id (−1 background), perspective-correct barycentrics and
depth, rows from the top.

Triangles are drawn unindexed (3 vertices each) so that every corner carries its own barycentric
attribute; gl_PrimitiveID is then the triangle index. Depth is tested on a linear depth written to
gl_FragDepth (24-bit over [near, far]) while clipping still happens at the near plane in clip space.
With `barycentrics=False` the mesh is drawn indexed and only id and depth come back: OpenGL's fastest way
to the same visibility, which the benchmark also times. moderngl is a test dependency, imported only here.
"""

import numpy as np

_VERTEX = """
#version 330
uniform vec2 size;
uniform float near, far;
uniform bool perspective;
in vec3 pos;
in vec3 corner;
out vec3 bary;
out float depth;
void main() {
  bary = corner;
  depth = pos.z;
  if (perspective) {
    float w = pos.z;
    float z = (far + near) / (far - near) * w - 2.0 * far * near / (far - near);
    gl_Position = vec4(2.0 * pos.x / size.x - w, w - 2.0 * pos.y / size.y, z, w);
  } else {
    gl_Position = vec4(2.0 * pos.x / size.x - 1.0, 1.0 - 2.0 * pos.y / size.y, 0.0, 1.0);
  }
}
"""

_FRAGMENT = """
#version 330
uniform float near, far;
in vec3 bary;
in float depth;
layout(location = 0) out vec4 id_depth;
layout(location = 1) out vec4 bary_out;
void main() {
  id_depth = vec4(float(gl_PrimitiveID + 1), depth, 0.0, 1.0);
  bary_out = vec4(bary, 1.0);
  gl_FragDepth = clamp((depth - near) / (far - near), 0.0, 1.0);
}
"""

_CONTEXT = None


def context():
  """The process's moderngl EGL standalone context (created on first use)."""
  global _CONTEXT
  if _CONTEXT is None:
    import moderngl

    _CONTEXT = moderngl.create_standalone_context(backend="egl")
  return _CONTEXT


class GLRasterizer:
  """Reusable OpenGL state for one mesh topology and image size (so timing excludes setup)."""

  def __init__(self, triangles_f3, height, width, *, perspective=True, near=0.1, far=1000.0,
               barycentrics=True):
    import moderngl

    ctx = context()
    self.height, self.width = height, width
    self.triangles = np.asarray(triangles_f3, np.int64)
    self.barycentrics = barycentrics
    num_tri = len(self.triangles)
    self.prog = ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
    self.prog["size"].value = (float(width), float(height))
    self.prog["near"].value = near
    self.prog["far"].value = far
    self.prog["perspective"].value = perspective
    if barycentrics:
      corners = np.tile(np.eye(3, dtype=np.float32), (num_tri, 1))
      self.pos = ctx.buffer(reserve=num_tri * 3 * 3 * 4)
      self.corner = ctx.buffer(corners.tobytes())
      self.vao = ctx.vertex_array(self.prog, [(self.pos, "3f", "pos"), (self.corner, "3f", "corner")])
    else:
      self.pos = ctx.buffer(reserve=(int(self.triangles.max()) + 1) * 3 * 4)
      self.corner = ctx.buffer(self.triangles.astype(np.int32).tobytes())  # the index buffer
      self.vao = ctx.vertex_array(self.prog, [(self.pos, "3f", "pos")], index_buffer=self.corner,
                                  index_element_size=4)
    self.textures = [ctx.texture((width, height), 4, dtype="f4"), ctx.texture((width, height), 4, dtype="f4"),
                     ctx.depth_texture((width, height))]
    self.fbo = ctx.framebuffer(color_attachments=self.textures[:2], depth_attachment=self.textures[2])
    self.ctx = ctx
    self.moderngl = moderngl

  def draw(self, screen_n3):
    """One frame: (id+1 and depth [H,W,4] float32, bary [H,W,4] or None), bottom row first."""
    vertices = screen_n3[self.triangles] if self.barycentrics else screen_n3
    self.pos.write(np.ascontiguousarray(vertices, np.float32).tobytes())
    self.fbo.use()
    self.ctx.enable(self.moderngl.DEPTH_TEST)
    self.ctx.disable(self.moderngl.CULL_FACE)
    self.fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
    self.vao.render(self.moderngl.TRIANGLES)
    shape = (self.height, self.width, 4)
    id_depth = np.frombuffer(self.fbo.read(components=4, attachment=0, dtype="f4"), np.float32).reshape(shape)
    if not self.barycentrics:
      return id_depth, None
    bary = np.frombuffer(self.fbo.read(components=4, attachment=1, dtype="f4"), np.float32).reshape(shape)
    return id_depth, bary

  def __call__(self, screen_bn3):
    """(tri_id [B,H,W] int32, bary [B,H,W,3] or None, depth [B,H,W]), rows from the top like `rasterize`."""
    ids, barys, depths = [], [], []
    for screen in np.asarray(screen_bn3, np.float32):
      id_depth, bary = self.draw(screen)
      id_depth = id_depth[::-1]
      ids.append(np.rint(id_depth[..., 0]).astype(np.int32) - 1)
      depths.append(np.where(ids[-1] >= 0, id_depth[..., 1], 0.0))
      if bary is not None:
        barys.append(np.where(ids[-1][..., None] >= 0, bary[::-1, :, :3], 0.0))
    return np.stack(ids), (np.stack(barys) if barys else None), np.stack(depths)

  def release(self):
    for obj in (self.vao, self.pos, self.corner, self.fbo, *self.textures, self.prog):
      obj.release()


def gl_rasterize(screen_bn3, triangles_f3, height, width, *, perspective=True, near=0.1, far=1000.0):
  """One-shot `GLRasterizer(...)(screen_bn3)`."""
  raster = GLRasterizer(triangles_f3, height, width, perspective=perspective, near=near, far=far)
  try:
    return raster(screen_bn3)
  finally:
    raster.release()
