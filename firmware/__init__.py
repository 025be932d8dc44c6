"""hls4ml firmware for the trigger: conversion, wrapper, projects, hardware cost."""
