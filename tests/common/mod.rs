//! Builds small innfer model files in memory, so tests can break them one piece at a time.
#![allow(dead_code)]

pub mod native;
pub mod tools;

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::{Dtype, TensorView};

/// A model file under construction: metadata and tensors.
#[derive(Clone)]
pub struct ModelFile {
    pub meta: BTreeMap<String, String>,
    pub tensors: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>,
}

/// A tiny deterministic generator for weights.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

impl ModelFile {
    pub fn set(&mut self, key: &str, value: impl ToString) -> &mut Self {
        self.meta.insert(key.to_string(), value.to_string());
        self
    }

    pub fn f32(&mut self, name: &str, shape: &[usize], values: &[f32]) -> &mut Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensors
            .insert(name.to_string(), (Dtype::F32, shape.to_vec(), bytes));
        self
    }

    pub fn i64(&mut self, name: &str, values: &[i64]) -> &mut Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensors
            .insert(name.to_string(), (Dtype::I64, vec![values.len()], bytes));
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let views: Vec<(String, TensorView<'_>)> = self
            .tensors
            .iter()
            .map(|(k, (dt, shape, data))| {
                (
                    k.clone(),
                    TensorView::new(*dt, shape.clone(), data).unwrap(),
                )
            })
            .collect();
        let meta: HashMap<String, String> = self.meta.clone().into_iter().collect();
        safetensors::serialize(views, Some(meta)).unwrap()
    }

    /// Adds a `Linear(in, hidden) ReLU Linear(hidden, out)` subnet.
    pub fn mlp(
        &mut self,
        rng: &mut Lcg,
        block: usize,
        name: &str,
        n_in: usize,
        hidden: usize,
        n_out: usize,
    ) -> &mut Self {
        self.deep_mlp(rng, block, name, n_in, hidden, 1, n_out)
    }

    /// Adds `Linear(in, h) ReLU [Linear(h, h) ReLU]×(layers−1) Linear(h, out)`; the last layer
    /// is small so the chain stays tame.
    #[allow(clippy::too_many_arguments)]
    pub fn deep_mlp(
        &mut self,
        rng: &mut Lcg,
        block: usize,
        name: &str,
        n_in: usize,
        hidden: usize,
        layers: usize,
        n_out: usize,
    ) -> &mut Self {
        let p = format!("module_list.{block}.{name}");
        let mut spec = Vec::new();
        let mut width = n_in;
        for l in 0..=layers {
            let last = l == layers;
            let out = if last { n_out } else { hidden };
            let scale = if last { 0.3 } else { 1.0 } / (width as f32).sqrt();
            let w = rng.vec(out * width, scale);
            let b = rng.vec(out, 0.1);
            self.f32(&format!("{p}.{}.weight", 2 * l), &[out, width], &w)
                .f32(&format!("{p}.{}.bias", 2 * l), &[out], &b);
            spec.push(format!("{}:Linear", 2 * l));
            if !last {
                spec.push(format!("{}:ReLU", 2 * l + 1));
            }
            width = out;
        }
        self.set(
            &format!("innfer.block.{block}.subnet.{name}"),
            spec.join(" "),
        )
    }
}

/// A conditional INN: `blocks` × (GLOW coupling with condition, PermuteRandom), x of width
/// `dim`, y of width `cond`.
pub fn glow_cinn(dim: usize, cond: usize, hidden: usize, blocks: usize, seed: u64) -> ModelFile {
    glow_chain(dim, cond, hidden, 1, blocks, seed)
}

/// The GLOW + PermuteRandom chain with `layers` hidden layers per subnet (the peers' benchmark
/// models use 2: Linear-ReLU-Linear-ReLU-Linear).
pub fn glow_chain(
    dim: usize,
    cond: usize,
    hidden: usize,
    layers: usize,
    blocks: usize,
    seed: u64,
) -> ModelFile {
    let mut rng = Lcg(seed);
    let mut f = ModelFile {
        meta: BTreeMap::new(),
        tensors: BTreeMap::new(),
    };
    f.set("innfer.format", 1)
        .set("innfer.freia", "0.2")
        .set("innfer.dim", dim)
        .set("innfer.cond_dim", cond)
        .set("innfer.blocks", 2 * blocks)
        .set("innfer.layout", if cond > 0 { "cinn" } else { "none" });
    if cond > 0 {
        f.set("innfer.layout.x", dim).set("innfer.layout.y", cond);
    }
    let l1 = dim / 2;
    let l2 = dim - l1;
    for b in 0..blocks {
        let i = 2 * b;
        f.set(&format!("innfer.block.{i}.type"), "GLOWCouplingBlock")
            .set(&format!("innfer.block.{i}.split"), l1)
            .set(
                &format!("innfer.block.{i}.cond"),
                if cond > 0 { "0" } else { "none" },
            )
            .deep_mlp(&mut rng, i, "subnet1", l1 + cond, hidden, layers, 2 * l2)
            .deep_mlp(&mut rng, i, "subnet2", l2 + cond, hidden, layers, 2 * l1);
        let j = i + 1;
        // k ↦ (stride·k + b + 1) mod dim is a permutation when the stride is coprime to dim.
        let gcd = |mut a: usize, mut b: usize| {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        };
        let stride = (3..).step_by(2).find(|&s| gcd(s, dim) == 1).unwrap();
        let perm: Vec<i64> = (0..dim)
            .map(|k| ((k * stride + b + 1) % dim) as i64)
            .collect();
        let mut inv = vec![0i64; dim];
        for (k, &p) in perm.iter().enumerate() {
            inv[p as usize] = k as i64;
        }
        f.set(&format!("innfer.block.{j}.type"), "PermuteRandom")
            .i64(&format!("module_list.{j}.perm"), &perm)
            .i64(&format!("module_list.{j}.perm_inv"), &inv);
    }
    f
}

/// The paper's INN layout on top of `blocks` unconditional GLOW blocks.
pub fn glow_inn(
    x: usize,
    pad_x: usize,
    z: usize,
    pad_zy: usize,
    y: usize,
    blocks: usize,
) -> ModelFile {
    let dim = x + pad_x;
    assert_eq!(dim, z + pad_zy + y);
    let mut f = glow_cinn(dim, 0, 16, blocks, 7);
    f.set("innfer.cond_dim", 0)
        .set("innfer.layout", "inn")
        .set("innfer.layout.pad_x", pad_x)
        .set("innfer.layout.z", z)
        .set("innfer.layout.pad_zy", pad_zy)
        .set("innfer.layout.y", y)
        .set("innfer.layout.x", x);
    for b in 0..blocks {
        f.meta.remove(&format!("innfer.block.{}.cond", 2 * b));
    }
    f
}

/// The peers benchmark's large GLOW (benches/peers/run.py, size "large"): 64 wide, 12 × (GLOW
/// coupling with subnets Linear(32,512)-ReLU-Linear(512,512)-ReLU-Linear(512,64), then
/// PermuteRandom), no condition: 7.5 M weights, about 30 MB in f32. It gets the paper's INN
/// layout (x 64 ↔ z 62 + y 2) so that sampling, and so `innfer sample`, takes it.
pub fn glow_large() -> ModelFile {
    let mut f = glow_chain(64, 0, 512, 2, 12, 103);
    f.set("innfer.layout", "inn")
        .set("innfer.layout.x", 64)
        .set("innfer.layout.pad_x", 0)
        .set("innfer.layout.z", 62)
        .set("innfer.layout.pad_zy", 0)
        .set("innfer.layout.y", 2);
    f
}

/// Every committed FrEIA fixture model and every shipped model, sorted.
pub fn committed_models() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("tests/fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path().join("model.safetensors"))
        .filter(|p| p.exists())
        .collect();
    for e in std::fs::read_dir(root.join("models")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "safetensors") {
            files.push(p);
        }
    }
    files.sort();
    assert!(files.len() >= 20, "{files:?}");
    files
}

impl ModelFile {
    /// The values of F32 tensor `name`.
    pub fn tensor_f32(&self, name: &str) -> Vec<f32> {
        let (dtype, _, bytes) = &self.tensors[name];
        assert_eq!(*dtype, Dtype::F32, "{name}");
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    /// The number of values in all the tensors (whatever their type).
    pub fn values(&self) -> usize {
        self.tensors
            .values()
            .map(|(_, shape, _)| shape.iter().product::<usize>())
            .sum()
    }
}

/// A conditional AllInOneBlock (x `d` wide, y 2 values, `cinn` layout) whose permutation is
/// Householder: `k` reflections `vk_householder` and `w_0`, a permutation matrix as FrEIA
/// makes it, or (`dense_w0`) that permutation times a reflection, a dense orthogonal matrix.
pub fn householder_aio(d: usize, k: usize, dense_w0: bool, seed: u64) -> ModelFile {
    let mut rng = Lcg(seed);
    let mut f = ModelFile {
        meta: BTreeMap::new(),
        tensors: BTreeMap::new(),
    };
    let (l1, l2) = (d - d / 2, d / 2);
    f.set("innfer.format", 1)
        .set("innfer.freia", "0.2")
        .set("innfer.dim", d)
        .set("innfer.cond_dim", 2)
        .set("innfer.blocks", 1)
        .set("innfer.layout", "cinn")
        .set("innfer.layout.x", d)
        .set("innfer.layout.y", 2)
        .set("innfer.block.0.type", "AllInOneBlock")
        .set("innfer.block.0.cond", "0")
        .set("innfer.block.0.permutation", "householder")
        .mlp(&mut rng, 0, "subnet", l1 + 2, 16, 2 * l2);
    let scale = rng.vec(d, 0.5);
    let offset = rng.vec(d, 0.5);
    f.f32("module_list.0.global_scale", &[1, d], &scale).f32(
        "module_list.0.global_offset",
        &[1, d],
        &offset,
    );
    // i ↦ (stride·i + 1) mod d is a permutation when the stride is coprime to d.
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let stride = (3..).step_by(2).find(|&s| gcd(s, d) == 1).unwrap();
    let mut w0 = vec![0.0f64; d * d];
    for i in 0..d {
        w0[i * d + (stride * i + 1) % d] = 1.0;
    }
    if dense_w0 {
        let a: Vec<f64> = rng.vec(d, 1.0).iter().map(|&v| v as f64).collect();
        w0 = householder_product(&w0, &a, d);
    }
    let w0: Vec<f32> = w0.iter().map(|&v| v as f32).collect();
    let vk = rng.vec(k * d, 1.0);
    f.f32("module_list.0.w_0", &[d, d], &w0)
        .f32("module_list.0.vk_householder", &[k, d], &vk);
    f
}

/// `w_0·H_1⋯H_K` in f64 (`H_k = I − 2·v_k·v_kᵀ / v_kᵀv_k`, `vk` is `[K, d]`), as FrEIA's
/// `_construct_householder_permutation` forms it.
pub fn householder_product(w0: &[f64], vk: &[f64], d: usize) -> Vec<f64> {
    let mut w = w0.to_vec();
    for v in vk.chunks_exact(d) {
        let c = 2.0 / v.iter().map(|x| x * x).sum::<f64>();
        for row in w.chunks_exact_mut(d) {
            let f = c * row.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
            row.iter_mut().zip(v).for_each(|(a, b)| *a -= f * b);
        }
    }
    w
}
