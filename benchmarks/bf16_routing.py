"""Which bf16 product path wins per row count on this CPU (decided the routing of docs/performance.md, session 4).

    python benchmarks/bf16_routing.py

GB/s of weights for 32 BLOOM-560m block matrices and the LM head, 2 threads, best of 5: torch's bf16
F.linear (oneDNN's native bf16 where the CPU has it), the same oneDNN kernel on weights packed into its
blocked layout (tongues.fast.packed, kernels="packed"; session 5), tongues.kernels' compiled row kernel,
and the widened fp32 slices + BLAS (tongues.fast.upcast_linear). Not a test."""

import torch, time, torch.nn.functional as F, sys
sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parent.parent))
from tongues.fast.kernels import upcast_linear
from tongues.fast.packed import can_pack, pack, packed_linear
from tongues.kernels import dense
torch.set_num_threads(2)
print("mkldnn bf16:", torch.ops.mkldnn._is_mkldnn_bf16_supported(), torch.backends.cpu.get_cpu_capability())
shapes=[(3072,1024),(1024,1024),(4096,1024),(1024,4096)]*8
W=[torch.randn(s).bfloat16() for s in shapes]
H=torch.randn(250880,1024).bfloat16()
P=[pack(w) for w in W] if can_pack() else None
HP=pack(H) if can_pack() else None
class O: pass
owners=[O() for _ in W]; ho=O()
def bench(fn,n=5):
    fn(); b=1e9
    for _ in range(n):
        t=time.perf_counter(); fn(); b=min(b,time.perf_counter()-t)
    return b
nb=sum(w.numel()*2 for w in W)
for rows in (1,2,4,8,16,32,64):
    xs={1024:torch.randn(rows,1024).bfloat16(),4096:torch.randn(rows,4096).bfloat16()}
    r={}
    r['F.linear']=bench(lambda:[F.linear(xs[w.shape[1]],w) for w in W])
    if P is not None:
        r['packed']=bench(lambda:[packed_linear(xs[w.shape[1]],p,None) for w,p in zip(W,P)])
    r['compiled']=bench(lambda:[dense.run_rows_kernel(xs[w.shape[1]].float(),w,None,None,o) for w,o in zip(W,owners)])
    r['upcast']=bench(lambda:[upcast_linear(xs[w.shape[1]],w) for w in W])
    hx=xs[1024]
    h={}
    h['F.linear']=bench(lambda:F.linear(hx,H),3)
    if HP is not None:
        h['packed']=bench(lambda:packed_linear(hx,HP,None),3)
    h['compiled']=bench(lambda:dense.run_rows_kernel(hx.float(),H,None,None,ho),3)
    print(rows, "blocks GB/s", {k:round(nb/v/1e9,1) for k,v in r.items()}, "head GB/s", {k:round(H.numel()*2/v/1e9,1) for k,v in h.items()}, flush=True)
