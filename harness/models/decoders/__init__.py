"""Turn a model's named output heads into detections, one decoder per head layout (numpy only).

Every decoder returns `Detections` with boxes normalised to the model input, [ymin, xmin, ymax, xmax],
which is also normalised to the original image when the input was stretched to the model's size.
For a letterboxed input, `tfod_centernet` takes the true (unpadded) shape and normalises by it, as the
TF OD API does; other decoders' boxes go through harness.models.preprocess.boxes_to_image.
Scaling to pixels and the results-file conventions belong to `harness.scoring.coco`.
"""


from harness.models.decoders import heads  # noqa: F401  (registers the decoders)
from harness.models.decoders.base import DECODERS, Decoder, Detections, get_decoder, register_decoder
from harness.models.decoders.heads import decode_ltrb_centernet, decode_postprocessed, decode_tfod_centernet
from harness.models.decoders.peaks import (
    CENTER_MASKS,
    PEAK_EPSILON,
    box_iou_matrix,
    center_valid_mask,
    greedy_nms,
    sigmoid32,
    top_k_cells,
    top_k_centers,
)

__all__ = ["CENTER_MASKS", "DECODERS", "PEAK_EPSILON", "Decoder", "Detections", "box_iou_matrix", "center_valid_mask",
           "decode_ltrb_centernet", "decode_postprocessed", "decode_tfod_centernet", "get_decoder", "greedy_nms",
           "register_decoder", "sigmoid32", "top_k_cells", "top_k_centers"]
