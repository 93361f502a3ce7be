#!/usr/bin/env bash
# Sweep steering sites, sources, rescaling and channel rankings on the shipped models
# (α = 1, 50 held-out pairs each); prints one Markdown table row per combination.
# Usage: scripts/explore_steering.sh [RANK ...]   (default: separation effect)
set -euo pipefail
cd "$(dirname "$0")/.."
B=.build/release/sparsebridge
sites=$($B info bridges/default.h5 --json | python3 -c "import json,sys; print(' '.join(s['site'] for s in json.load(sys.stdin)['sites']))")
for rank in ${@:-separation effect}; do
  for site in $sites; do
    for src in sparse encoded; do
      for resc in none rms; do
        $B steer --dense models/dense.h5 --sparse models/sparse.h5 --bridge bridges/default.h5 --site "$site" --source $src \
            --rescale $resc --rank $rank --strengths 0:1:1 --pairs 50 --json \
          | python3 -c "import json,sys; d=json.load(sys.stdin); c=d['curve']; print('| \`$site\` | $src | $resc | $rank | %d | %.2f | %.2f | %.2f → %.2f |' % (d['channel'], c[-1]['flip_rate'], c[-1]['control_flip_rate'], c[0]['mean_logit_diff'], c[-1]['mean_logit_diff']))"
      done
    done
  done
done
