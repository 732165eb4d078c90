"""Run in each of N processes by tests/distributed/test_tensor_parallel.py (under torch.distributed.run).

For every case in the JSON file argv[1] it loads the checkpoint with ``tp_plan="auto"``, runs a
forward (and greedy generation for causal LMs), and saves each rank's results beside the case.
"""

import json
import os
import sys

import torch


def peak_and_current_rss() -> tuple[int, int]:
    fields = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    return int(fields["VmHWM"].split()[0]) * 1024, int(fields["VmRSS"].split()[0]) * 1024


def main(cases_path: str) -> None:
    import tongues
    from tongues.distributed.tensor_parallel import init_from_env

    torch.set_num_threads(1)
    init_from_env()
    rank = torch.distributed.get_rank()
    for case in json.load(open(cases_path)):
        cls = getattr(tongues, case["class"])
        _, before = peak_and_current_rss()
        model = cls.from_pretrained(case["checkpoint"], tp_plan="auto", dtype=case.get("dtype", "float32"),
                                    quantization=case.get("quantization"))
        peak, _ = peak_and_current_rss()
        ids = torch.tensor(case["ids"])
        model.tp_traffic.reset()
        with torch.no_grad():
            out = model(ids)
        traffic = vars(model.tp_traffic).copy()
        result = {"logits": out.logits, "rss_before": before, "peak": peak, "traffic": traffic}
        if case.get("quantization") == "int8":  # a row-split layer's integers and scales, compared exactly
            layer = model.transformer.h[0].mlp.dense_4h_to_h
            result["rowwise"] = {"qweight": layer.qweight.clone(), "scale": layer.scale.clone()}
        if case.get("max_new_tokens"):
            result["tokens"] = model.generate(ids, max_new_tokens=case["max_new_tokens"], do_sample=False)
        torch.save(result, f"{case['checkpoint']}/tp_result{case.get('quantization') or ''}.{rank}.pt")
        del model
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
    # As the tongues executable does under torchrun (tongues.cli.entry): skip the interpreter's
    # finalization, during which a gloo thread releasing a collective's tensors can abort the process.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
