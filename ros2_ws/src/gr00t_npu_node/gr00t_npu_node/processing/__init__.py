"""GR00T N1.6 pre/post-processing: camera frames, instruction prompt and robot state to model tensors
(`Gr00tProcessor`), and the model's normalized action chunk back to joint targets."""
