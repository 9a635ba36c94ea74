# Two commands do everything on a fresh machine (see README.md):
#   make demo   create .venv, install, generate the demo dataset, train the four models, print the table
#   make test   create .venv, install, run the fast test suite
#   make demo-video   the same for YouTube-8M: synthetic records, Table 4's four video models
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR := runs/demo
DEMO_HEADS := plain self_attention cma ms_cma
comma := ,
empty :=
space := $(empty) $(empty)
DEMO_WORKDIRS := $(subst $(space),$(comma),$(addprefix $(DEMO_DIR)/,$(DEMO_HEADS)))
VIDEO_DIR := runs/yt8m_demo
VIDEO_VARIANTS := self_attention_fc self_attention_snet cma_fc cma_snet
VIDEO_WORKDIRS := $(subst $(space),$(comma),$(addprefix $(VIDEO_DIR)/,$(VIDEO_VARIANTS)))
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: install demo demo-video test test-slow bench clean

# tensorflow-serving-api (the gRPC PredictRequest of cma_tf.serving.clients) goes in --no-deps:
# its own requirement would pull a second full TensorFlow next to tensorflow-cpu (docs/design.md §2.14).
$(STAMP): setup.cfg pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m pip install --quiet --no-deps "tensorflow-serving-api>=2.16,<3"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m cma_tf.datasets.demo --out_dir=$(DEMO_DIR)/data
	@for head in $(DEMO_HEADS); do \
	  echo "=== training $$head ==="; \
	  rm -rf $(DEMO_DIR)/$$head; \
	  $(PY) -m cma_tf.train --config=configs/demo.py:$$head --workdir=$(DEMO_DIR)/$$head \
	    --config.data.data_dir=$(DEMO_DIR)/data || exit 1; \
	done
	$(PY) -m cma_tf.evaluate --config=configs/demo.py --config.data.data_dir=$(DEMO_DIR)/data \
	  --workdirs=$(DEMO_WORKDIRS) --names=plain,self-attention,CMA,MS-CMA --per_class \
	  --output=$(DEMO_DIR)/table.md

demo-video: $(STAMP)
	$(PY) -m cma_tf.datasets.yt8m_synthetic --out_dir=$(VIDEO_DIR)/data
	@for variant in $(VIDEO_VARIANTS); do \
	  echo "=== training $$variant ==="; \
	  rm -rf $(VIDEO_DIR)/$$variant; \
	  $(PY) -m cma_tf.train --config=configs/yt8m_demo.py:$$variant --workdir=$(VIDEO_DIR)/$$variant \
	    --config.data.data_dir=$(VIDEO_DIR)/data/frame || exit 1; \
	done
	$(PY) -m cma_tf.evaluate --config=configs/yt8m_demo.py --config.data.data_dir=$(VIDEO_DIR)/data/frame \
	  --workdirs=$(VIDEO_WORKDIRS) --names=Self-attention-FC,Self-attention-SNet,CMA-FC,CMA-SNet \
	  --output=$(VIDEO_DIR)/table.md
	$(PY) -m cma_tf.segment_inference --config=configs/yt8m_demo.py --config.data.data_dir=$(VIDEO_DIR)/data/frame \
	  --workdir=$(VIDEO_DIR)/cma_snet --input='$(VIDEO_DIR)/data/frame/test*.tfrecord' \
	  --output=$(VIDEO_DIR)/submission.csv

test: $(STAMP)
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

clean:
	rm -rf $(VENV) runs build *.egg-info
