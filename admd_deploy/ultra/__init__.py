"""The Ultralytics adapter: the only package of admd-deploy that imports ``ultralytics``.

Everything else reaches Ultralytics through this small typed API (each module calls
:func:`env.prepare` before its first ``import ultralytics``; importing this package itself loads
neither torch nor Ultralytics):

- :mod:`.env` -- ``prepare()`` (offline mode, config dir, fonts, the version check), ``home()``,
  ``cpu_threads()``; :mod:`.version` -- ``supported_range()``, ``check_version()``;
- :mod:`.trainer` -- ``trainer_for_task``, ``KDDetectionTrainer``, ``KDOBBTrainer``, ``sidecar_path``
  (train with or without distillation); :mod:`.model` -- ``KDModel``, ``load_teacher``,
  ``feature_levels``, ``detection_head``;
- :mod:`.checkpoints` -- ``load_checkpoint``, ``guess_task``, ``model_yaml``;
- :mod:`.validate` -- ``val_metrics``, ``predict_detections``, ``dataset_info``, ``Predictor``;
- :mod:`.metrics` -- ``match_predictions``, ``ap_per_class`` (-> ``APResult``), ``box_iou``,
  ``probiou``, ``xywh2xyxy``, ``corners_to_xywhr`` (match-and-AP);
- :mod:`.export` -- ``export_onnx``, ``head_decode_nodes`` (letterbox needs no adapter: the edge
  package's ``admd_edge.preprocess.letterbox_image`` is pixel-identical to Ultralytics' ``LetterBox``,
  ``tests/ultra/test_letterbox.py``);
- :mod:`.data` -- ``image_formats``, ``img2label_paths``, ``label_problem``, ``datasets_dir``,
  ``split_windows``, ``crop_and_save``, ``progress`` (dataset checks, DOTA scene splitting);
- :mod:`.contracts` -- every private or undocumented Ultralytics symbol relied on, with why;
  ``tests/ultra/test_contracts.py`` holds one contract test per entry.

Ultralytics' own distillation protocol: decision
-------------------------------------------------
Ultralytics 8.4 ships its own distillation (``ultralytics.nn.distill_model.DistillationModel``,
switched on by ``args.distill_model``) and, to serve it, tests ``hasattr(model, "student_model")``
in several places. admd-deploy does NOT use that distillation: :class:`.model.KDModel` is its own
wrapper and ``args.distill_model`` stays None. KDModel does keep the attribute name
``student_model`` on purpose, because most of the branches that test it do exactly what a
student-plus-criterion wrapper needs (reach the student's head and criterion). Every branch, in
Ultralytics 8.4.190, and where we stand (tests: ``tests/ultra/test_student_model_protocol.py``):

1. ``BaseTrainer._setup_train``: wraps the model in ``DistillationModel`` when
   ``args.distill_model`` is set. KEPT OFF: our settings travel as ``args.distill``; ``distill_model``
   stays None.
2. ``BaseTrainer.setup_model``: rebuilds a ``DistillationModel`` found in a resumed checkpoint.
   KEPT OFF: ``last.pt``/``best.pt`` hold the plain student (``save_model`` below).
3. ``BaseTrainer._handle_nan_recovery``: on a NaN loss, with ``student_model`` present, loads
   ``ema.student_model`` and ``model.projector`` from ``last.pt``. UNDONE: KDModel has no projector
   and ``last.pt`` holds the plain student; ``KDTrainerMixin._handle_nan_recovery`` shows the base
   method the plain student, then restores the KD state from the sidecar.
4. ``BaseTrainer.resume_training``: ``getattr(model, "student_model", model).model[-1]`` decides
   whether to rebuild an end-to-end criterion. RELIED ON (the student's head; KDModel forwards
   ``criterion``/``init_criterion`` to the student).
5. ``BaseTrainer.build_optimizer`` (MuSGD): the same expression finds the head whose ``cv3`` gets a
   higher learning rate. RELIED ON.
6. ``DetectionTrainer.set_class_weights``: puts ``class_weights`` on ``model.student_model``, whose
   criterion reads them. RELIED ON.
7. ``torch_utils.qat_state``/``strip_qat``/``restore_qat``: quantisation-aware training touches the
   student only. NEUTRAL (no QAT here; a KDModel reports no QAT state).
8. ``ModelEMA.__init__``: drops a ``teacher_model`` attribute from the EMA copy. NOT NEEDED and kept
   off: KDModel has no ``teacher_model``; its unregistered teacher is dropped on deep copy.
9. ``torch_utils.strip_optimizer``: unwraps a ``DistillationModel`` to its student. NOT REACHED:
   ``KDTrainerMixin.save_model`` already serialises the plain student, which strip_optimizer saves
   as is (halved, optimizer dropped, ``train_args`` cut to Ultralytics' keys). RELIED ON: that plain path.
10. ``Exporter``: ``getattr(model, "student_model", model).model[-1]`` is the exported head.
    NEUTRAL: we export the plain ``best.pt``.
"""

from __future__ import annotations
