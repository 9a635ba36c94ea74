"""Dataset converters: COCO, VOC 2007, NUS-WIDE and CSV → the image TFRecord format.

One module per source, each a command line: `python -m cma_tf.data.convert.coco`, `.voc2007`,
`.nuswide`, `.csv_list`; `--help` on each lists its flags.
"""
