variable project_name
set project_name "trigger_top"
variable backend
set backend "vitis"
variable part
set part "xc7z020-clg400-1"
variable clock_period
set clock_period 4
