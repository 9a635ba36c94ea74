"""Small datasets in the real on-disk layout of each source, with every kind of bad input.

Each `make_*` writes under `root` and returns an `Expected` describing a correct conversion
with the converter's default options.
"""

import json
import os

from tests.data.convert.helpers import (
    Expected,
    file_bytes,
    save_image,
    save_random_bytes,
    save_truncated_jpeg,
)

# --------------------------------------------------------------------------- CSV

CSV_VOCABULARY = ["bird", "cat", "dog"]


def make_csv(root, header=True, bom=False, vocabulary=True, keep_empty=False):
    """`root/list.csv` + `root/imgs/`: rows `path,label1|label2`.

    With `vocabulary=True` the expectation is for `CSV_VOCABULARY` (so `zebra` is unknown);
    otherwise for the vocabulary of every label seen. With `keep_empty` (the command line's
    default), the row without labels is written with none; otherwise skipped as `no_labels`.
    """
    images = os.path.join(root, "imgs")
    rows, written, problems, raw, reencoded = [], {}, [], {}, {}

    def good(name, labels, **kwargs):
        result = save_image(os.path.join(images, name), **kwargs)
        rows.append(f"imgs/{name},{labels}")
        return result

    good("a.jpg", "cat|dog", seed=1)
    raw["imgs/a.jpg"] = file_bytes(os.path.join(images, "a.jpg"))
    written["imgs/a.jpg"] = {"cat", "dog"}
    good("b.jpg", " dog ", seed=2, width=40, height=30)  # spaces around a label are trimmed
    written["imgs/b.jpg"] = {"dog"}
    good("c.png", "bird|cat", seed=3, fmt="PNG", width=20, height=36)
    raw["imgs/c.png"] = file_bytes(os.path.join(images, "c.png"))
    written["imgs/c.png"] = {"bird", "cat"}
    reencoded["imgs/d.bmp"] = good("d.bmp", "cat", seed=4, fmt="BMP", width=17, height=13)
    written["imgs/d.bmp"] = {"cat"}
    reencoded["imgs/e.gif"] = good("e.gif", "dog|bird", seed=5, fmt="GIF", width=33, height=21)
    written["imgs/e.gif"] = {"dog", "bird"}
    good("l.jpg", "cat|cat||", seed=6)  # repeated and empty labels count once / not at all
    written["imgs/l.jpg"] = {"cat"}
    good("m.jpg", "bird", seed=7, mode="L")  # grayscale JPEG: stored as it is
    raw["imgs/m.jpg"] = file_bytes(os.path.join(images, "m.jpg"))
    written["imgs/m.jpg"] = {"bird"}
    reencoded["imgs/p.png"] = good("p.png", "dog", seed=8, fmt="PNG", mode="P")  # palette PNG: re-encoded
    written["imgs/p.png"] = {"dog"}

    save_random_bytes(os.path.join(images, "f.jpg"), seed=9)
    rows.append("imgs/f.jpg,cat")
    problems.append(("imgs/f.jpg", "unreadable_image"))
    save_truncated_jpeg(os.path.join(images, "g.jpg"), seed=10)
    rows.append("imgs/g.jpg,dog")
    problems.append(("imgs/g.jpg", "unreadable_image"))
    open(os.path.join(images, "empty.jpg"), "wb").close()
    rows.append("imgs/empty.jpg,dog")
    problems.append(("imgs/empty.jpg", "unreadable_image"))
    rows.append("imgs/h.jpg,cat")  # never written: missing
    problems.append(("imgs/h.jpg", "missing_file"))
    good("i.jpg", "", seed=11)
    if keep_empty:
        written["imgs/i.jpg"] = set()
    else:
        problems.append(("imgs/i.jpg", "no_labels"))
    good("j.jpg", "cat|zebra", seed=12)
    written["imgs/j.jpg"] = {"cat", "zebra"} if not vocabulary else {"cat"}
    good("k.jpg", "zebra", seed=13)
    if vocabulary:
        problems += [("imgs/j.jpg", "unknown_label"), ("imgs/k.jpg", "unknown_label"), ("imgs/k.jpg", "no_labels")]
    else:
        written["imgs/k.jpg"] = {"zebra"}

    data_rows = len(rows)
    body = list(rows)
    body.insert(4, "only_one_column")  # malformed: no label column
    body.insert(7, "imgs/a.jpg,cat,dog")  # malformed: three columns
    body.insert(9, "")  # blank lines are ignored
    line_of = {4: 4 + 1 + header, 7: 7 + 1 + header}
    problems += [(f"line {line_of[4]}", "bad_annotation"), (f"line {line_of[7]}", "bad_annotation")]
    if header:
        body.insert(0, "path,labels")
    text = "\n".join(body) + "\n"
    csv_path = os.path.join(root, "list.csv")
    with open(csv_path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        f.write(text)
    vocab = CSV_VOCABULARY if vocabulary else CSV_VOCABULARY + ["zebra"]
    return Expected(vocab, written, problems, data_rows + 2, raw, reencoded, root=csv_path)


# --------------------------------------------------------------------------- COCO

COCO_CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 3, "name": "car", "supercategory": "vehicle"},
    {"id": 5, "name": "airplane", "supercategory": "vehicle"},
    {"id": 18, "name": "dog", "supercategory": "animal"},
]
COCO_VOCABULARY = sorted(c["name"] for c in COCO_CATEGORIES)  # airplane, car, dog, person


def make_coco(root):
    """`root/annotations/instances_train2017.json` + `root/train2017/*.jpg`."""
    image_dir = os.path.join(root, "train2017")
    images, annotations = [], []
    written, problems, raw, reencoded = {}, [], {}, {}

    def add_image(image_id, file_name, width=32, height=24, kind="jpeg", seed=None):
        path = os.path.join(image_dir, file_name)
        seed = image_id if seed is None else seed
        if kind == "jpeg":
            save_image(path, seed=seed, width=width, height=height)
            raw[str(image_id)] = file_bytes(path)
        elif kind in ("GIF", "BMP"):
            reencoded[str(image_id)] = save_image(path, seed=seed, width=width, height=height, fmt=kind)
        elif kind == "random":
            save_random_bytes(path, seed=seed)
        elif kind == "truncated":
            save_truncated_jpeg(path, seed=seed)
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width,
                       "license": 1, "coco_url": "", "date_captured": "2013-11-14 11:18:45", "flickr_url": ""})

    def annotate(image_id, category_id, crowd=False):
        x, y, w, h = 2.0, 3.0, 10.0, 8.0
        if crowd:
            segmentation = {"counts": [6, 4, 14, 4, 740], "size": [24, 32]}
        else:
            segmentation = [[x, y, x + w, y, x + w, y + h, x, y + h]]
        annotations.append({"id": len(annotations) + 1000, "image_id": image_id, "category_id": category_id,
                            "bbox": [x, y, w, h], "area": w * h, "iscrowd": int(crowd),
                            "segmentation": segmentation})

    add_image(9, "000000000009.jpg", 40, 30)
    annotate(9, 1), annotate(9, 18)
    written["9"] = {"person", "dog"}
    add_image(25, "000000000025.jpg", 28, 36)
    annotate(25, 3), annotate(25, 1, crowd=True)  # crowd regions label the image too
    written["25"] = {"car", "person"}
    add_image(30, "000000000030.jpg")  # no annotations
    problems.append(("30", "no_labels"))
    add_image(34, "000000000034.jpg", kind="random")
    annotate(34, 1)
    problems.append(("34", "unreadable_image"))
    add_image(36, "000000000036.jpg", kind="truncated")
    annotate(36, 3)
    problems.append(("36", "unreadable_image"))
    images.append({"id": 42, "file_name": "000000000042.jpg", "height": 24, "width": 32})  # no file
    annotate(42, 18)
    problems.append(("42", "missing_file"))
    add_image(49, "000000000049.jpg")
    annotate(49, 99), annotate(49, 18)  # category 99 is not among the categories
    written["49"] = {"dog"}
    problems.append(("49", "unknown_label"))
    add_image(61, "000000000061.jpg")
    annotate(61, 99)
    problems += [("61", "unknown_label"), ("61", "no_labels")]
    add_image(64, "000000000064.gif", 30, 22, kind="GIF")
    annotate(64, 5)
    written["64"] = {"airplane"}
    add_image(71, "000000000071.jpg", 26, 20)
    annotate(71, 1), annotate(71, 1), annotate(71, 1)  # three people: one label
    written["71"] = {"person"}
    add_image(72, "000000000072.bmp", 19, 23, kind="BMP")
    annotate(72, 3), annotate(72, 18)
    written["72"] = {"car", "dog"}
    annotations.append({"id": 1, "image_id": 123456, "category_id": 1, "bbox": [0, 0, 1, 1], "area": 1.0,
                        "iscrowd": 0, "segmentation": [[0, 0, 1, 0, 1, 1]]})  # of an image not listed: ignored

    images.reverse()  # the converter orders by image id, not by the file's order
    data = {
        "info": {"description": "fixture", "version": "1.0", "year": 2017},
        "licenses": [{"id": 1, "name": "x", "url": ""}],
        "images": images,
        "annotations": annotations,
        "categories": COCO_CATEGORIES,
    }
    annotation_file = os.path.join(root, "annotations", "instances_train2017.json")
    os.makedirs(os.path.dirname(annotation_file), exist_ok=True)
    with open(annotation_file, "w") as f:
        json.dump(data, f)
    return Expected(COCO_VOCABULARY, written, problems, len(images), raw, reencoded, root=annotation_file)


# --------------------------------------------------------------------------- VOC 2007

VOC_CLASSES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
]


def voc_object(name, difficult=0, parts=(), with_name=True):
    part_xml = "".join(
        f"<part><name>{part}</name><bndbox><xmin>3</xmin><ymin>3</ymin><xmax>6</xmax><ymax>6</ymax></bndbox></part>"
        for part in parts
    )
    name_xml = f"<name>{name}</name>" if with_name else ""
    return (
        f"<object>{name_xml}<pose>Unspecified</pose><truncated>0</truncated><difficult>{difficult}</difficult>"
        f"<bndbox><xmin>2</xmin><ymin>3</ymin><xmax>20</xmax><ymax>18</ymax></bndbox>{part_xml}</object>"
    )


def voc_xml(image_id, objects, width=32, height=24):
    return (
        "<annotation>\n\t<folder>VOC2007</folder>\n"
        f"\t<filename>{image_id}.jpg</filename>\n"
        "\t<source><database>The VOC2007 Database</database><annotation>PASCAL VOC2007</annotation>"
        "<image>flickr</image></source>\n"
        f"\t<size><width>{width}</width><height>{height}</height><depth>3</depth></size>\n"
        "\t<segmented>0</segmented>\n\t" + "\n\t".join(objects) + "\n</annotation>\n"
    )


def make_voc(root):
    """`root/VOC2007/{Annotations,ImageSets/Main,JPEGImages}`; returns the expectation with
    difficult objects ignored (see `VOC_WITH_DIFFICULT` for the other)."""
    voc = os.path.join(root, "VOC2007")
    ann_dir, jpg_dir = os.path.join(voc, "Annotations"), os.path.join(voc, "JPEGImages")
    os.makedirs(ann_dir), os.makedirs(os.path.join(voc, "ImageSets", "Main")), os.makedirs(jpg_dir)
    ids, written, problems, raw = [], {}, [], {}

    def add(image_id, objects=None, xml_text=None, image="jpeg", width=32, height=24):
        ids.append(image_id)
        if xml_text is None and objects is not None:
            xml_text = voc_xml(image_id, objects, width, height)
        if xml_text is not None:
            with open(os.path.join(ann_dir, f"{image_id}.xml"), "w") as f:
                f.write(xml_text)
        path = os.path.join(jpg_dir, f"{image_id}.jpg")
        if image == "jpeg":
            save_image(path, seed=int(image_id), width=width, height=height)
            raw[image_id] = file_bytes(path)
        elif image == "random":
            save_random_bytes(path, seed=int(image_id))
        elif image == "truncated":
            save_truncated_jpeg(path, seed=int(image_id))

    add("000005", [voc_object("dog"), voc_object("person", parts=("head", "hand", "foot"))], width=40, height=30)
    written["000005"] = {"dog", "person"}
    add("000007", [voc_object("car", difficult=1), voc_object("car"), voc_object("bicycle")])
    written["000007"] = {"car", "bicycle"}
    add("000009", [voc_object("cat", difficult=1)])  # only a difficult object
    problems.append(("000009", "no_labels"))
    add("000012", xml_text="<annotation><filename>000012.jpg</filename><object><name>dog</name>")  # broken XML
    problems.append(("000012", "bad_annotation"))
    add("000016")  # no XML at all
    problems.append(("000016", "bad_annotation"))
    add("000017", [voc_object("horse")], image=None)  # no JPEG
    problems.append(("000017", "missing_file"))
    add("000019", [voc_object("sheep")], image="random")
    problems.append(("000019", "unreadable_image"))
    add("000020", [voc_object("unicorn"), voc_object("horse")], width=24, height=32)
    written["000020"] = {"horse"}
    problems.append(("000020", "unknown_label"))
    add("000021", [voc_object("dog"), voc_object(None, with_name=False)])  # an object without <name>
    problems.append(("000021", "bad_annotation"))
    add("000023", [voc_object("bus")], image="truncated")
    problems.append(("000023", "unreadable_image"))
    add("000024", [])  # no objects
    problems.append(("000024", "no_labels"))
    add("000026", [voc_object(" tvmonitor ", difficult=0), voc_object("tvmonitor")])  # stray spaces
    written["000026"] = {"tvmonitor"}

    with open(os.path.join(voc, "ImageSets", "Main", "trainval.txt"), "w") as f:
        f.write("".join(f"{i}\n" for i in ids))
    with open(os.path.join(voc, "ImageSets", "Main", "test.txt"), "w") as f:
        f.write("000005\n000007\n")
    return Expected(VOC_CLASSES, written, problems, len(ids), raw, {}, root=voc)


def voc_with_difficult(expected: Expected) -> Expected:
    """The same fixture converted with `include_difficult=True`."""
    written = dict(expected.written, **{"000009": {"cat"}})
    problems = [p for p in expected.problems if p != ("000009", "no_labels")]
    return Expected(expected.vocabulary, written, problems, expected.listed, expected.raw, {}, root=expected.root)


# --------------------------------------------------------------------------- NUS-WIDE

NUS_CONCEPTS = ["airport", "animal", "beach", "bear", "birds"]


def make_nuswide(root, crlf=True):
    """`root/NUS-WIDE/{Concepts81.txt, ImageList/, Groundtruth/TrainTestLabels/, Flickr/}`
    (with 5 of the 81 concepts). Files use CRLF line ends, as the Windows-made release does."""
    base = os.path.join(root, "NUS-WIDE")
    flickr = os.path.join(base, "Flickr")
    newline = "\r\n" if crlf else "\n"
    entries = [
        # (list path, labels, kind, width, height)
        ("actor\\0001_2124494179.jpg", {"animal", "beach"}, "jpeg", 32, 24),
        ("actor\\0002_174174086.jpg", {"airport"}, "jpeg", 36, 28),
        ("airport\\0003_2728487708.jpg", set(), "jpeg", 32, 24),  # no concept
        ("airport\\0004_423935286.jpg", {"bear", "birds", "animal"}, "jpeg", 20, 30),
        ("animal\\0005_1209123133.jpg", {"birds"}, "missing", 32, 24),
        ("animal\\0006_2403815024.jpg", {"animal"}, "random", 32, 24),
        ("beach\\0007_498513398.jpg", {"beach"}, "truncated", 32, 24),
        ("beach\\0008_2351779958.jpg", {"beach", "airport"}, "BMP", 25, 19),  # a BMP named .jpg
        ("birds\\0009_326785542.jpg", {"birds"}, "jpeg", 32, 24),
    ]
    written, problems, raw, reencoded = {}, [], {}, {}
    for index, (relative, labels, kind, width, height) in enumerate(entries):
        source_id = relative.replace("\\", "/")
        path = os.path.join(flickr, *relative.split("\\"))
        if kind == "jpeg":
            save_image(path, seed=index, width=width, height=height)
            raw[source_id] = file_bytes(path)
        elif kind == "BMP":
            reencoded[source_id] = save_image(path, seed=index, width=width, height=height, fmt="BMP")
        elif kind == "random":
            save_random_bytes(path, seed=index)
        elif kind == "truncated":
            save_truncated_jpeg(path, seed=index)
        if kind == "missing":
            problems.append((source_id, "missing_file"))
        elif kind in ("random", "truncated"):
            problems.append((source_id, "unreadable_image"))
        elif not labels:
            problems.append((source_id, "no_labels"))
        else:
            written[source_id] = labels

    def write_lines(path, lines):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", newline="") as f:
            f.write("".join(line + newline for line in lines))

    write_lines(os.path.join(base, "Concepts81.txt"), NUS_CONCEPTS)
    write_lines(os.path.join(base, "ImageList", "TrainImagelist.txt"), [e[0] for e in entries])
    write_lines(os.path.join(base, "ImageList", "TestImagelist.txt"), [entries[0][0]])
    for concept in NUS_CONCEPTS:
        label_dir = os.path.join(base, "Groundtruth", "TrainTestLabels")
        # the release pads values with a trailing space on some files
        write_lines(os.path.join(label_dir, f"Labels_{concept}_Train.txt"),
                    [("1" if concept in e[1] else "0") + " " for e in entries])
        write_lines(os.path.join(label_dir, f"Labels_{concept}_Test.txt"), ["1" if concept == "beach" else "0"])
    return Expected(NUS_CONCEPTS, written, problems, len(entries), raw, reencoded, root=base)
