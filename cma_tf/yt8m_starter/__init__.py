"""CMA for the YouTube-8M starter code (github.com/google/youtube-8m): model classes for its
`train.py --model=…` and a runner that starts that `train.py` under TF 2.21."""
