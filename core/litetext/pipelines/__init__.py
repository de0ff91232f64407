"""The pipelines, each a module named for what it does: `image` (text and box prompts on images, datasets),
`clicks` (one object from clicks and boxes), `video` (text-prompted tracking), and `batching` (groups,
out-of-memory back-off and read-ahead, with no model). They run the model through a `litetext.runtime.Runtime`
and never ask which one it is."""
