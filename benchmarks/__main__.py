from benchmarks._runner import main

raise SystemExit(main())
