"""Images in the TFRecord format of `cma_tf/data/records.py` (`config.data.format="image"`):
the paper's COCO, VOC 2007 and NUS-WIDE experiments and the demo dataset."""

from cma_tf.data import images, records, requests
from cma_tf.data.validate import first_bad_record
from cma_tf.kinds.registry import DataKind, register_kind
from cma_tf.metrics import image as image_metrics


class ImageKind(DataKind):
    """`(images [B, S, S, 3] in 0..255, multi_hot [B, N])` batches; mAP and C/O P/R/F1 (§4.1)."""

    name = "image"
    backbones = ("resnet101", "small", "convnext_small")
    metric_keys = image_metrics.REPORT_KEYS
    summary_keys = image_metrics.SUMMARY_KEYS
    full_keys = image_metrics.FULL_KEYS
    monitor = "mAP"
    labels_field = records.LABELS
    reads_images = True

    def list_files(self, config, split):
        return records.list_shards(config.data.data_dir, split)

    def first_bad_record(self, config, files, num_classes):
        """A label id outside the vocabulary or an undecodable image (`data/validate.py`)."""
        return first_bad_record(files, num_classes)

    def input_shape(self, config):
        return (config.data.image_size, config.data.image_size, 3)

    def build_dataset(self, config, files, num_classes, batch_size, training, seed, repeat, input_context):
        data = config.data
        return images.make_image_dataset(
            files,
            num_classes=num_classes,
            image_size=data.image_size,
            batch_size=batch_size,
            training=training,
            seed=seed,
            shuffle_buffer=data.shuffle_buffer,
            deterministic=data.deterministic,
            repeat=repeat,
            input_context=input_context,
        )

    def metrics(self, scores, targets):
        return image_metrics.multilabel_metrics(scores, targets)

    def serving_request(self, config):
        return requests.image_request(config.data.image_size)


register_kind(ImageKind())
