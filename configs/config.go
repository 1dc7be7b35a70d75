// Package configs holds pad's run configuration: one Go struct with the
// paper's defaults, strict TOML decoding (unknown keys and wrong types are
// errors that name the file, the line and the key), command-line overrides
// of single keys, validation, a canonical TOML encoding, a hash of the
// settings that define a training trajectory, and the TOML files shipped
// with pad (embedded in the binary, so `pad train --config quickstart`
// works without the repository on disk).
//
// A typical caller does
//
//	cfg, err := configs.Open(ref)            // a path, or a built-in name
//	for _, kv := range overrides {           // e.g. "train.epochs=10"
//		err = cfg.Set(kv)
//	}
//	err = cfg.Validate()
//	cfg = cfg.Resolved()                     // pin derived values
//	text, err := cfg.TOML()                  // written into the run directory
//
// The TOML layout is
//
//	name = "..."   seed = 1
//	[data]   dataset, root, train_limit, test_limit, test_fraction
//	[model]  nf, nz
//	[train]  epochs, max_iters, batch, lr_e, lr_g, beta1, beta2, eps,
//	         condition, wake_weight, nrem_weight, rem_weight, wake_noise,
//	         lambda, max_tile, occlusion_per_image, log_every,
//	         checkpoint_every, sample_every
//	[eval]   every, probe_epochs, probe_lr, probe_batch, occlusion_tile
//	[device] kind, precision, graphs, overlap, threads, gpu
package configs

// Config is everything a pad run needs to know. The zero value is not
// useful; start from Default, Parse, Load or Open.
type Config struct {
	// Name is the run's name; its outputs go to runs/<name>/. Empty means
	// the command line derives one.
	Name string `toml:"name"`
	// Seed seeds the one counter-based generator every random number of the
	// run (shuffles, initialisation, noise, occlusion masks) comes from.
	// TOML integers are signed, so at most 2^63-1.
	Seed uint64 `toml:"seed"`

	// Data selects the training and test images.
	Data Data `toml:"data"`
	// Model sets the size of the networks.
	Model Model `toml:"model"`
	// Train sets the optimisation and the sleep phases.
	Train Train `toml:"train"`
	// Eval sets the linear probe and the occlusion sweep.
	Eval Eval `toml:"eval"`
	// Device selects where the computation runs.
	Device Device `toml:"device"`
}

// Data selects the data set.
type Data struct {
	// Dataset is one of "embedded" (the Fashion-MNIST sample built into the
	// binary), "mnist", "fashion" (Fashion-MNIST), "cifar10", "svhn" or
	// "folder" (one sub-folder of images per class).
	Dataset string `toml:"dataset"`
	// Root is the directory holding the data set's files (for "folder": one
	// sub-folder per class). Empty means data/<dataset> (see Data.Dir);
	// ignored for "embedded".
	Root string `toml:"root"`
	// TrainLimit uses only the first TrainLimit training images; 0 (or a
	// number larger than the set) uses all of them.
	TrainLimit int `toml:"train_limit"`
	// TestLimit uses only the first TestLimit test images; 0 uses all.
	TestLimit int `toml:"test_limit"`
	// TestFraction is, for "folder" without root/train and root/test
	// sub-folders, the share of each class held out as the test set and
	// never trained on (0 < f < 1; the images are chosen by a hash of their
	// path, see dataset.LoadFolderSplit). Ignored by the other data sets.
	TestFraction float64 `toml:"test_fraction"`
}

// Model sets the size of the encoder/discriminator and the generator.
type Model struct {
	// NF is the filter factor: the convolutions have nf, 2nf and 4nf
	// channels. The paper uses 64.
	NF int `toml:"nf"`
	// NZ is the size of the latent code z. The paper uses 256.
	NZ int `toml:"nz"`
}

// Train sets the optimisation and the Wake/NREM/REM cycle.
type Train struct {
	// Epochs is the number of passes over the training set. The paper
	// trains for 50; the default of 1 is a quick look.
	Epochs int `toml:"epochs"`
	// MaxIters stops training after this many iterations in total, counted
	// over all epochs (0 = no limit).
	MaxIters int `toml:"max_iters"`
	// Batch is the mini-batch size (64 in the paper). At least 2: the KL
	// term uses the unbiased batch standard deviation.
	Batch int `toml:"batch"`
	// LRE is the Adam learning rate of the encoder/discriminator E.
	LRE float64 `toml:"lr_e"`
	// LRG is the Adam learning rate of the generator G.
	LRG float64 `toml:"lr_g"`
	// Beta1 is Adam's first-moment decay rate.
	Beta1 float64 `toml:"beta1"`
	// Beta2 is Adam's second-moment decay rate.
	Beta2 float64 `toml:"beta2"`
	// Eps is Adam's denominator term ε.
	Eps float64 `toml:"eps"`
	// Condition is the paper's training condition, one of Conditions():
	// "pad", "no-memory-mix", "no-rem", "no-nrem", "wake-only", or the
	// appendix variants "rem-noise-only", "rem-memory-only",
	// "wake-rem-nrem", "nrem-mix". It sets the loss weights and the wake
	// noise (see ConditionWeights) and, for the variants, how the phases
	// run.
	Condition string `toml:"condition"`
	// WakeWeight overrides the condition's weight W of the wake
	// reconstruction loss; nil keeps the condition's value.
	WakeWeight *float64 `toml:"wake_weight"`
	// NREMWeight overrides the condition's weight N of the NREM loss; nil
	// keeps the condition's value.
	NREMWeight *float64 `toml:"nrem_weight"`
	// REMWeight overrides the condition's weight R of the adversarial
	// losses (REM is skipped when it is 0); nil keeps the condition's value.
	REMWeight *float64 `toml:"rem_weight"`
	// WakeNoise overrides the condition's standard deviation ε of the
	// noise added to z before the wake reconstruction; nil keeps the
	// condition's value.
	WakeNoise *float64 `toml:"wake_noise"`
	// Lambda is the REM latent mix factor λ in
	// z_mix = λ(λz + (1−λ)z_old) + (1−λ)n. The paper uses 0.5.
	Lambda float64 `toml:"lambda"`
	// MaxTile is the largest tile size t of the NREM occlusion mask; t is
	// drawn uniformly from 1..MaxTile (8 in the paper).
	MaxTile int `toml:"max_tile"`
	// OcclusionPerImage draws one occlusion mask per image instead of the
	// paper's one mask per mini-batch.
	OcclusionPerImage bool `toml:"occlusion_per_image"`
	// LogEvery is the number of iterations between progress lines and
	// metrics rows.
	LogEvery int `toml:"log_every"`
	// CheckpointEvery is the number of iterations between checkpoints; 0
	// writes one at the end of each epoch only.
	CheckpointEvery int `toml:"checkpoint_every"`
	// SampleEvery is the number of epochs between sample image grids
	// (0 = none).
	SampleEvery int `toml:"sample_every"`
}

// Eval sets the evaluation run during and after training.
type Eval struct {
	// Every is the number of epochs between linear probes during training
	// (0 = no probe during training).
	Every int `toml:"every"`
	// ProbeEpochs is the number of epochs the linear classifier is trained
	// on the frozen features (20 in the paper).
	ProbeEpochs int `toml:"probe_epochs"`
	// ProbeLR is the SGD learning rate of the linear classifier.
	ProbeLR float64 `toml:"probe_lr"`
	// ProbeBatch is the mini-batch size of the linear classifier.
	ProbeBatch int `toml:"probe_batch"`
	// OcclusionTile is the tile size of the occlusion-robustness sweep.
	OcclusionTile int `toml:"occlusion_tile"`
}

// Device selects the hardware.
type Device struct {
	// Kind is "auto" (CUDA when a GPU is usable, else CPU), "cpu" or "cuda".
	Kind string `toml:"kind"`
	// Precision is the math of the CUDA convolutions and matrix products:
	// "tf32" (PyTorch's default for cuDNN) or "fp32". Ignored on the CPU.
	Precision string `toml:"precision"`
	// Graphs replays each training iteration as one CUDA graph (true, the
	// default); false issues every operation directly. Ignored on the CPU.
	Graphs bool `toml:"graphs"`
	// Overlap runs each layer's weight gradients on a second CUDA stream
	// beside the rest of the backward pass (true, the default); false
	// queues everything on one stream. Ignored on the CPU.
	Overlap bool `toml:"overlap"`
	// Threads is the number of CPU threads (0 = all cores).
	Threads int `toml:"threads"`
	// GPU is the CUDA device index.
	GPU int `toml:"gpu"`
}

// Default returns the paper's settings on the embedded sample, for one
// epoch, on the best device available.
func Default() Config {
	return Config{
		Seed: 1,
		Data: Data{
			Dataset:      "embedded",
			TestFraction: 0.2,
		},
		Model: Model{
			NF: 64,
			NZ: 256,
		},
		Train: Train{
			Epochs:    1,
			Batch:     64,
			LRE:       2e-4,
			LRG:       2e-4,
			Beta1:     0.5,
			Beta2:     0.999,
			Eps:       1e-8,
			Condition: "pad",
			Lambda:    0.5,
			MaxTile:   8,
			LogEvery:  50,
			// CheckpointEvery 0: end of each epoch only.
			SampleEvery: 1,
		},
		Eval: Eval{
			Every:         1,
			ProbeEpochs:   20,
			ProbeLR:       0.2,
			ProbeBatch:    64,
			OcclusionTile: 4,
		},
		Device: Device{
			Kind:      "auto",
			Precision: "tf32",
			Graphs:    true,
			Overlap:   true,
		},
	}
}

// Dir returns the directory the data set is read from: Root when set,
// otherwise data/<dataset>; "" for the embedded sample.
func (d Data) Dir() string {
	if d.Dataset == "embedded" {
		return ""
	}
	if d.Root != "" {
		return d.Root
	}
	return "data/" + d.Dataset
}

// Resolved returns a copy of c with the derived values written out:
// Data.Root set to Data.Dir(), and the four weights of Train set to the
// condition's values where they are nil (left nil for an unknown
// condition). Resolving does not change what a run does, nor its Hash; it
// makes the TOML written into a run directory say everything.
func (c Config) Resolved() Config {
	c.Data.Root = c.Data.Dir()
	w, err := c.Train.Weights()
	if err != nil {
		return c
	}
	c.Train.WakeWeight = ptr(w.Wake)
	c.Train.NREMWeight = ptr(w.NREM)
	c.Train.REMWeight = ptr(w.REM)
	c.Train.WakeNoise = ptr(w.WakeNoise)
	return c
}

func ptr(v float64) *float64 { return &v }
