#!/usr/bin/env python3
"""Summaries of an Nsight Compute CSV (ncu --csv --print-units base --metrics ...), one line per
group, largest total first:
  ncu-csv.py launches FILE   per kernel name, grid, block and registers: launches x mean duration
                             (tools/bench/ncu-decode-step.sh)
  ncu-csv.py names FILE      per kernel name: launches, total duration, share (tools/bench/ncu-prefill.sh)
"""
import collections
import csv
import sys


def launches(path):
    """{launch ID: {'name': kernel name, metric name: value}} of the CSV's metric rows."""
    hdr, data = None, collections.defaultdict(dict)
    for r in csv.reader(open(path)):
        if r and r[0] == 'ID':
            hdr = r
            continue
        if not hdr or len(r) != len(hdr):
            continue
        d = dict(zip(hdr, r))
        data[d['ID']]['name'] = d['Kernel Name']
        data[d['ID']][d['Metric Name']] = d['Metric Value']
    return data


def us(v):
    return float(v.get('gpu__time_duration.sum', '0').replace(',', '')) / 1000  # ncu prints 138,720


def by_launch(data):
    agg = collections.defaultdict(list)
    for v in data.values():
        key = (v['name'][:60], v.get('launch__grid_size'), v.get('launch__block_size'),
               v.get('launch__registers_per_thread'))
        agg[key].append(us(v))
    for key, ds in sorted(agg.items(), key=lambda x: -sum(x[1])):
        print(f"{len(ds):4d} x {sum(ds) / len(ds):7.2f} us  grid {str(key[1]):>5} block {str(key[2]):>4} regs {str(key[3]):>4}  {key[0]}")


def by_name(data):
    tot, cnt = collections.Counter(), collections.Counter()
    for v in data.values():
        name = v['name'].split('(')[0][:70]
        tot[name] += us(v)
        cnt[name] += 1
    all_us = sum(tot.values())
    print(f"{'kernel':70s} {'launches':>8s} {'us total':>10s} {'share':>6s}")
    for k, t in tot.most_common(30):
        print(f"{k:70s} {cnt[k]:8d} {t:10.1f} {100 * t / all_us:5.1f}%")
    print(f"all kernels: {all_us:.1f} us")


if __name__ == '__main__':
    if len(sys.argv) != 3 or sys.argv[1] not in ('launches', 'names'):
        sys.exit(__doc__)
    (by_launch if sys.argv[1] == 'launches' else by_name)(launches(sys.argv[2]))
