"""trainer.config: one definition of every training setting, checked before anything runs."""

import pytest

from tests.helpers import cli


CHECKS = [(["--channels", "xyz"], "invalid choice: 'xyz'"),
          (["--batch_size", "0"], "--batch_size must be positive, got 0"),
          (["--learning_rate", "-1"], "--learning_rate must be positive")]


@pytest.mark.parametrize("module,argv,message", [
    (module, argv, message)
    for module in ("trainer.fit", "trainer.ablate", "trainer.scaling", "trainer.verify")
    for argv, message in CHECKS
    if not (module == "trainer.ablate" and argv[0] == "--channels")])   # ablate's rows choose
def test_every_training_command_checks_its_settings_before_anything_runs(module, argv, message,
                                                                         tmp_path):
  """The same settings (TrainConfig), the same checks, one line each, before
  any dataset is opened (the dataset named here does not exist)."""
  out = cli(module, "--dataset", "a2i_speakers/none", "--data_dir", str(tmp_path), *argv,
            check=False)
  assert out.returncode == 2 and message in out.stderr
  assert len(out.stderr.strip().splitlines()) == 1 and "not built" not in out.stderr
