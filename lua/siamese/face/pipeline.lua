--- siamese.face.pipeline: what every face recognizer does the same way
-- from its own detect, align and embed_batch, so that siamese.face's
-- face-api recognizer and the MobileFaceNet one share it: fr:embed_faces
-- (align + embed the faces found, in one batch) and fr:embed_all (detect,
-- then embed_faces).
local pipeline = {}

--- align + embed of faces found in img (from detect or main_face), in one
-- batch: returns those whose chip could be cut, each given .chip and
-- .descriptor (the recognizer's dim).
function pipeline.embed_faces(self, img, faces, opts)
  local chips, kept = {}, {}
  for _, f in ipairs(faces) do
    local chip = self:align(img, f, opts)
    if chip then
      f.chip = chip
      chips[#chips + 1] = chip
      kept[#kept + 1] = f
    end
  end
  if #chips > 0 then
    local d, norms = self:embed_batch(chips)
    for i, f in ipairs(kept) do
      f.descriptor = d:select(1, i):clone()
      f.embedding_norm = norms and norms[i] -- the pipelines whose embedding norm tells faces apart
    end
  end
  return kept
end

--- detect + align + embed: the faces of a photo, each with .descriptor (the recognizer's dim).
function pipeline.embed_all(self, img, opts)
  return self:embed_faces(img, self:detect(img, opts), opts)
end

return pipeline
