#!/usr/bin/env bash
# Sweep steering sites, sources and rescaling on the shipped models (50 held-out pairs each).
cd /work/main
B=.build/release/sparsebridge
for site in blocks.1.hook_resid_pre blocks.1.hook_resid_mid blocks.2.hook_resid_pre blocks.2.hook_resid_mid blocks.3.hook_resid_pre blocks.3.hook_resid_mid; do
  for src in sparse encoded; do
    for resc in none rms; do
      $B steer --dense models/dense.h5 --sparse models/sparse.h5 --bridge bridges/default.h5 --site $site --source $src --rescale $resc --strengths 0:1:1 --pairs 50 --json \
        | python3 -c "import json,sys; d=json.load(sys.stdin); c=d['curve']; print('| \`$site\` | $src | $resc | %d | %.2f | %.2f | %.2f → %.2f |' % (d['channel'], c[-1]['flip_rate'], c[-1]['control_flip_rate'], c[0]['mean_logit_diff'], c[-1]['mean_logit_diff']))"
    done
  done
done
